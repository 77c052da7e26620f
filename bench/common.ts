/** What the benchmarks share: process probes, load clients, table helpers. */
import { execFile, spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { mintToken } from "../src/auth/token.ts";
import { ROOT, TEST_SECRET } from "../test/helpers/server.ts";

export const run = promisify(execFile);

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
export const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

/** User + system CPU of a process so far, from /proc (clock ticks are 1/100 s on Linux). */
export function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function du(dir: string): Promise<number> {
  const { stdout } = await run("du", ["-sb", dir]);
  return Number(stdout.split(/\s/)[0]);
}

/** Samples a process's RSS until stopped; returns the peak. */
export function rssSampler(pid: number, everyMs = 50) {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), everyMs);
  return { stop: () => (clearInterval(timer), peak) };
}

export const adminToken = () =>
  mintToken(TEST_SECRET, { tenant: "", roles: ["admin"], subject: "bench", ttlSeconds: 3600 }, { tenant: "tenant", roles: "roles" });

interface LoadClientResult {
  acked: number;
  /** From its start to its last acknowledgement. */
  seconds: number;
  cpuSeconds: number;
  latenciesMs: number[];
}

/** How long a load client may take to set up (load modules, encode its requests, connect). */
const READY_TIMEOUT_MS = 60_000;

/**
 * One load-client process: `ready` once it printed the line `ready`, `go()`
 * starts it, `result` is the JSON of its last line. A client that fails, or
 * is not ready in time, rejects both (and is killed).
 */
function loadClient(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench/load-client.ts"), ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  // A client that died before its "go" would make the write fail: its exit reports it.
  child.stdin.on("error", () => {});
  const lines = () => stdout.split("\n").filter((line) => line.trim() !== "");
  // "close", not "exit": only then has all of its stdout been read.
  const closed = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`load client ended with ${signal ?? `exit code ${code}`}: ${stderr.slice(-2000)}`)),
    );
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`load client not ready after ${READY_TIMEOUT_MS / 1000} s: ${stderr.slice(-2000)}`)), READY_TIMEOUT_MS);
    let seen = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
      // Looked for until found: the results that follow can be long.
      if (!seen && lines().includes("ready")) {
        seen = true;
        clearTimeout(timer);
        resolve();
      }
    });
    closed.then(() => reject(new Error("load client ended before it was ready")), reject).finally(() => clearTimeout(timer));
  });
  const result = closed.then(() => JSON.parse(lines().at(-1) ?? "") as LoadClientResult);
  // Awaited only once every client is ready; a failure before that is `ready`'s.
  result.catch(() => {});
  return { ready, result, go: () => child.stdin.end("go\n"), kill: () => child.kill() };
}

/**
 * Drives a server from `processes` load-client processes (bench/load-client.ts),
 * started together once all are ready: `seconds` is from that start to the
 * last client's last acknowledgement, `clientCpuSeconds` the clients' CPU
 * from their start. If one client fails, the others are stopped.
 */
export async function runLoadClients(opts: {
  baseUrl: string;
  token: string;
  events: number;
  processes: number;
  streamsPerProcess: number;
  perMessage: number;
  /** Total events/s offered; 0 = as fast as they can. */
  rate?: number;
  /** gRPC Ingest streams (default), the same in an open loop at `rate`, or unary Append in Connect JSON (bench/load-client.ts). */
  mode?: "grpc" | "grpc-open" | "append-json";
}) {
  const perProcess = Math.ceil(opts.events / opts.processes);
  const clients = Array.from({ length: opts.processes }, () =>
    loadClient([
      opts.baseUrl, opts.token, String(perProcess), String(opts.streamsPerProcess), String(opts.perMessage),
      String((opts.rate ?? 0) / opts.processes), opts.mode ?? "grpc",
    ]),
  );
  const stopAll = (err: unknown) => {
    for (const c of clients) c.kill();
    throw err;
  };
  await Promise.all(clients.map((c) => c.ready)).catch(stopAll);
  for (const c of clients) c.go();
  const results = await Promise.all(clients.map((c) => c.result)).catch(stopAll);
  return {
    seconds: Math.max(...results.map((r) => r.seconds)),
    acked: results.reduce((n, r) => n + r.acked, 0),
    clientCpuSeconds: results.reduce((n, r) => n + r.cpuSeconds, 0),
    latenciesMs: results.flatMap((r) => r.latenciesMs),
  };
}

export function environmentLine(): string {
  const versions = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")).packages;
  return `Node ${process.version}, chdb ${versions["node_modules/chdb"].version}, ${cpus().length} cores (${cpus()[0].model})`;
}

/** Prints a section and appends it to bench/RESULTS.md. */
export function writeResults(section: string): void {
  console.log("\n" + section);
  appendFileSync(join(ROOT, "bench/RESULTS.md"), "\n" + section);
}
