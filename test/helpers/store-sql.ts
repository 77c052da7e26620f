import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./server.ts";

/**
 * Runs SQL statements on a stopped server's embedded store, in a child process
 * (one chDB engine per process): for tests that must put the store in a state
 * the service itself never leaves it in, such as a crash between two parts of
 * one INSERT.
 */
export function runStoreSql(dataDir: string, statements: string[]): void {
  storeSql(dataDir, statements, "ignore");
}

/** The rows of one query on a stopped server's embedded store: what the service does not show, such as a table's content. */
export function readStoreSql<T = Record<string, unknown>>(dataDir: string, query: string): T[] {
  const out = storeSql(dataDir, [PRINT, query], "pipe");
  return out
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as T);
}

const PRINT = "--print";

function storeSql(dataDir: string, statements: string[], stdout: "ignore" | "pipe"): string {
  const out = execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "test/helpers/store-sql.ts"), join(dataDir, "chdb"), ...statements], {
    cwd: ROOT,
    stdio: ["ignore", stdout, "inherit"],
    encoding: "utf8",
  });
  return out ?? "";
}

if (process.argv[1]?.endsWith("store-sql.ts")) {
  const [path, ...args] = process.argv.slice(2);
  const print = args[0] === PRINT;
  const statements = print ? args.slice(1) : args;
  const { Session } = await import("chdb");
  const session = new Session(path);
  for (const sql of statements) {
    const result = await session.queryAsync(sql, { format: print ? "JSONEachRow" : "CSV" });
    if (print) process.stdout.write(result.text());
  }
  session.close();
}
