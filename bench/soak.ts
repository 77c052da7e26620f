/**
 * `npm run bench:soak`: sustained ingest at a fixed rate (BENCH_SOAK_RATE,
 * default 8000 events/s, about half of this machine's maximum) for
 * BENCH_SOAK_MINUTES (default 10) from two client processes over gRPC,
 * sampling the server's RSS every 5 s. Memory is flat when the second half
 * of the run grows by less than 5% over its first sample; the table goes to
 * bench/RESULTS.md. Exits 1 when RSS is not flat or passes 1.5 GiB.
 */
import { removeDataDir, startServer, tempDataDir } from "../test/helpers/server.ts";
import { adminToken, cpuSecondsOf, du, environmentLine, mib, percentile, rssOf, runLoadClients, writeResults } from "./common.ts";

const rate = Number(process.env.BENCH_SOAK_RATE ?? 8000);
const minutes = Number(process.env.BENCH_SOAK_MINUTES ?? 10);
const LIMIT = 1.5 * 1024 * 1024 * 1024;

const dataDir = tempDataDir();
// The production batch windows (the test helper shortens them to 20 ms).
const server = await startServer({ dataDir, env: { AUDITLOG_BATCH_MAX_DELAY_MS: "100", AUDITLOG_READ_AUDIT_DELAY_MS: "1000" } });
const samples: { atS: number; rss: number }[] = [];
const started = performance.now();
const timer = setInterval(() => samples.push({ atS: (performance.now() - started) / 1000, rss: rssOf(server.pid) }), 5000);
const load = await runLoadClients({
  baseUrl: server.baseUrl,
  token: await adminToken(),
  events: rate * minutes * 60,
  processes: 2,
  streamsPerProcess: 2,
  perMessage: 200,
  rate,
});
clearInterval(timer);
const cpu = cpuSecondsOf(server.pid);
await server.stop();
const disk = await du(dataDir);
removeDataDir(dataDir);

const half = samples.filter((s) => s.atS >= load.seconds / 2);
const growth = half.length > 1 ? (half[half.length - 1].rss - half[0].rss) / half[0].rss : 0;
const peak = Math.max(...samples.map((s) => s.rss));
const flat = growth < 0.05 && peak < LIMIT;
const perMinute = Array.from({ length: Math.ceil(load.seconds / 60) }, (_, m) => {
  const inMinute = samples.filter((s) => s.atS >= m * 60 && s.atS < (m + 1) * 60);
  return inMinute.length ? `| ${m + 1} | ${mib(Math.max(...inMinute.map((s) => s.rss)))} |` : "";
}).filter(Boolean);

writeResults(`## Soak — ${new Date().toISOString().slice(0, 16)}Z

${environmentLine()}; ${rate} events/s offered for ${minutes} min over gRPC streams (2 processes × 2 streams, 200 events per message).

Sustained **${Math.round(load.acked / load.seconds)} events/s** (${load.acked} acknowledged in ${load.seconds.toFixed(0)} s); ack latency p50 ${percentile(load.latenciesMs, 50).toFixed(0)} ms, p99 ${percentile(load.latenciesMs, 99).toFixed(0)} ms; server CPU ${((cpu * 1000 * 10_000) / load.acked).toFixed(0)} ms per 10k events; ${mib(disk)} MiB on disk. Server RSS peak ${mib(peak)} MiB; over the second half it grew by ${(growth * 100).toFixed(1)}%: **${flat ? "flat" : "NOT flat"}**.

| minute | server RSS peak MiB |
|---:|---:|
${perMinute.join("\n")}
`);
process.exit(flat ? 0 : 1);
