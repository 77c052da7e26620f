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

/** One load-client process: `ready` once set up, `go()` starts it, `result` is its JSON line. */
function loadClient(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench/load-client.ts"), ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<void>((resolve, reject) =>
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`load client exited with ${code}: ${stderr.slice(-2000)}`)))),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
      if (stdout.startsWith("ready\n")) resolve();
    });
    exited.then(() => reject(new Error("load client ended before it was ready")), reject);
  });
  return {
    ready,
    go: () => child.stdin.end("go\n"),
    kill: () => child.kill(),
    result: exited.then(() => JSON.parse(stdout.slice("ready\n".length)) as { acked: number; cpuSeconds: number; latenciesMs: number[] }),
  };
}

/**
 * Drives a server from `processes` load-client processes (bench/load-client.ts),
 * started together once all are ready; `seconds` and `clientCpuSeconds` count
 * from that start.
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
  await Promise.all(clients.map((c) => c.ready)).catch((err) => {
    for (const c of clients) c.kill();
    throw err;
  });
  const started = performance.now();
  for (const c of clients) c.go();
  const results = await Promise.all(clients.map((c) => c.result));
  return {
    seconds: (performance.now() - started) / 1000,
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
