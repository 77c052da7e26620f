import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { mintToken } from "../../src/auth/token.ts";
import type { Role } from "../../src/auth/principal.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789";

export interface TestServer {
  pid: number;
  port: number;
  baseUrl: string;
  dataDir: string;
  /** Every log line the server printed, parsed. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (entry: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  token(tenant: string, roles: Role[], opts?: { subject?: string; ttlSeconds?: number }): Promise<string>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, nothing gets to run. */
  crash(): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), "auditlog-test-"));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => child.once("exit", (code) => res(code)));
}

/** Starts `auditlog serve` as a child process on a random port over a real chDB data dir. */
export async function startServer(
  options: { dataDir?: string; env?: Record<string, string>; /** Node flags, e.g. --cpu-prof for profiling from bench scripts. */ nodeArgs?: string[] } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDataDir();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), join(ROOT, "bin/auditlog.mjs"), "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      AUDITLOG_DATA_DIR: dataDir,
      AUDITLOG_JWT_SECRET: TEST_SECRET,
      AUDITLOG_BATCH_MAX_DELAY_MS: "20",
      AUDITLOG_READ_AUDIT_DELAY_MS: "20",
      // Most tests write to tenants they make up; the tenant tests switch this off.
      AUDITLOG_AUTO_CREATE_TENANTS: "true",
      LOG_LEVEL: "info",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A failed assertion skips stop(); never leave a server behind the test process.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  child.once("exit", () => process.off("exit", reap));
  const logs: Record<string, unknown>[] = [];
  const watchers: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const port = await new Promise<number>((res, rej) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const entry = JSON.parse(line);
        logs.push(entry);
        for (const w of watchers.filter((w) => w.match(entry))) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(entry);
        }
        if (typeof entry.port === "number" && String(entry.msg).startsWith("listening")) res(entry.port);
      } catch {
        logs.push({ raw: line });
      }
    });
    child.once("exit", (code) => rej(new Error(`server exited (${code}) before listening: ${stderr}\n${JSON.stringify(logs)}`)));
  });
  const secret = options.env?.AUDITLOG_JWT_SECRET ?? TEST_SECRET;
  return {
    pid: child.pid!,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    dataDir,
    logs,
    waitForLog(match) {
      const seen = logs.find(match);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => watchers.push({ match, resolve }));
    },
    token: (tenant, roles, opts = {}) =>
      mintToken(
        secret,
        { tenant, roles, subject: opts.subject ?? `test-${tenant}`, ttlSeconds: opts.ttlSeconds ?? 3600 },
        { tenant: "tenant", roles: "roles" },
      ),
    async stop() {
      child.kill("SIGTERM");
      return exited(child);
    },
    async crash() {
      child.kill("SIGKILL");
      await exited(child);
    },
  };
}
