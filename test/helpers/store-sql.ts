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
  execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "test/helpers/store-sql.ts"), join(dataDir, "chdb"), ...statements], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
  });
}

if (process.argv[1]?.endsWith("store-sql.ts")) {
  const [path, ...statements] = process.argv.slice(2);
  const { Session } = await import("chdb");
  const session = new Session(path);
  for (const sql of statements) await session.queryAsync(sql);
  session.close();
}
