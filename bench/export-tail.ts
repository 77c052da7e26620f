/**
 * Export and live-tail benchmark: `npm run bench:export`.
 *
 * Loads BENCH_EXPORT_EVENTS (default 1,000,000) realistic events through the
 * real server, then measures, against that one server:
 * - exporting all of them in each format over GET /v1/export, read as fast as
 *   the client can: throughput and the server's RSS before, at peak, after;
 * - live-tail delivery latency: from an event's commit stamp (`receivedAt`,
 *   taken when its batch starts to commit) to its arrival at a WebSocket client;
 * - ingest throughput with a stalled tail subscriber (matching every event,
 *   reading nothing) against none, in the same run.
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { join } from "node:path";
import WebSocket from "ws";
import { removeDataDir, startServer, tempDataDir } from "../test/helpers/server.ts";
import { adminToken, du, environmentLine, mib, percentile, rssOf, rssSampler, runLoadClients, writeResults } from "./common.ts";

const EVENTS = Number(process.env.BENCH_EXPORT_EVENTS ?? 1_000_000);
const INGEST_COMPARE_EVENTS = Number(process.env.BENCH_TAIL_INGEST_EVENTS ?? 200_000);

async function exportOnce(baseUrl: string, token: string, pid: number, format: string) {
  const before = rssOf(pid);
  const sampler = rssSampler(pid);
  const started = performance.now();
  const res = await fetch(`${baseUrl}/v1/export?format=${format}`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`export ${format}: HTTP ${res.status} ${await res.text()}`);
  let bytes = 0;
  let newlines = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    if (format === "ndjson") for (const b of chunk) if (b === 10) newlines++;
  }
  const seconds = (performance.now() - started) / 1000;
  const peak = sampler.stop();
  return { format, bytes, rows: format === "ndjson" ? newlines : undefined, seconds, before, peak, after: rssOf(pid) };
}

async function tailLatency(baseUrl: string, token: string) {
  const ws = new WebSocket(`${baseUrl.replace("http", "ws")}/v1/tail?tenant_id=latency`, ["auditlog.v1", `bearer.${token}`]);
  const latencies: number[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data));
      if (msg.live) resolve();
      for (const e of msg.events ?? []) latencies.push(Date.now() - Date.parse(e.receivedAt));
    });
    ws.on("error", reject);
  });
  const batches = 250;
  for (let i = 0; i < batches; i++) {
    const events = Array.from({ length: 20 }, (_, j) => ({ tenantId: "latency", type: "bench.latency", action: "VIEW", actor: { id: `u${j}` } }));
    const res = await fetch(`${baseUrl}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ events }),
    });
    if (res.status !== 200) throw new Error(`append: ${res.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  while (latencies.length < batches * 20) await new Promise((r) => setTimeout(r, 50));
  ws.close();
  return { events: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function ingestRate(baseUrl: string, token: string, stalledTail: boolean) {
  let ws: WebSocket | undefined;
  if (stalledTail) {
    ws = new WebSocket(`${baseUrl.replace("http", "ws")}/v1/tail`, ["auditlog.v1", `bearer.${token}`]);
    await new Promise<void>((resolve) => ws!.on("message", (d) => JSON.parse(String(d)).live && resolve()));
    ws.pause();
  }
  const r = await runLoadClients({ baseUrl, token, events: INGEST_COMPARE_EVENTS, processes: 2, streamsPerProcess: 2, perMessage: 500 });
  ws?.terminate();
  return Math.round(r.acked / r.seconds);
}

async function main() {
  const dataDir = tempDataDir();
  const server = await startServer({ dataDir });
  const token = await adminToken();
  console.log(`loading ${EVENTS} events...`);
  const load = await runLoadClients({ baseUrl: server.baseUrl, token, events: EVENTS, processes: 2, streamsPerProcess: 2, perMessage: 500 });
  console.log(`loaded ${load.acked} events at ${Math.round(load.acked / load.seconds)} events/s`);
  const disk = await du(join(dataDir, "chdb"));

  const exports = [];
  for (const format of ["ndjson", "csv", "parquet"]) {
    const r = await exportOnce(server.baseUrl, token, server.pid, format);
    exports.push(r);
    console.log(`${format}: ${mib(r.bytes)} MiB in ${r.seconds.toFixed(1)} s, RSS ${mib(r.before)} → peak ${mib(r.peak)} MiB`);
  }
  const latency = await tailLatency(server.baseUrl, token);
  console.log(`tail latency p50 ${latency.p50} ms, p99 ${latency.p99} ms`);
  // Alternated, so background merges of earlier loads weigh on both sides alike.
  const rates = [];
  for (const stalled of [false, true, false, true]) rates.push(await ingestRate(server.baseUrl, token, stalled));
  const without = Math.round((rates[0] + rates[2]) / 2);
  const withStalled = Math.round((rates[1] + rates[3]) / 2);
  console.log(`ingest without a tail ${without}/s, with a stalled tail ${withStalled}/s`);
  await server.stop();
  removeDataDir(dataDir);

  writeResults(
    [
      `## Export and tail — ${new Date().toISOString().slice(0, 16)}Z`,
      "",
      `${environmentLine()}; ${load.acked} realistic events (50 tenants) loaded through the server (${mib(disk)} MiB on disk), ` +
        "exported by an admin (all tenants) over GET /v1/export, read as fast as the client can.",
      "",
      "| export | rows | MiB | seconds | MiB/s | server RSS before MiB | RSS peak MiB | RSS after MiB |",
      "|---|---:|---:|---:|---:|---:|---:|---:|",
      ...exports.map(
        (r) =>
          `| ${r.format} | ${r.rows ?? "—"} | ${mib(r.bytes)} | ${r.seconds.toFixed(1)} | ${(r.bytes / 1024 / 1024 / r.seconds).toFixed(0)} | ${mib(r.before)} | ${mib(r.peak)} | ${mib(r.after)} |`,
      ),
      "",
      `Live tail over WebSocket: ${latency.events} events appended in batches of 20 every 20 ms; commit stamp → arrival at the client: ` +
        `**p50 ${latency.p50} ms, p99 ${latency.p99} ms**.`,
      "",
      `Ingest (${INGEST_COMPARE_EVENTS} events, gRPC streams, two runs each, alternated) with a tail subscriber that matches every event and reads nothing: ` +
        `**${withStalled} events/s**, against ${without} events/s without a subscriber (${((withStalled / without) * 100).toFixed(0)}%).`,
      "",
    ].join("\n"),
  );
}

await main();
