/**
 * Query benchmark: `npm run bench:query`.
 *
 * Loads BENCH_QUERY_EVENTS (default 10,000,000) realistic events (50 tenants,
 * 20 types, 5–10 attributes, messages of real words, 30 days, each received
 * a second after its time: the 5 or 6 weekly partitions of a month) into a
 * fresh store, starts the real server on it, and times each question an auditor
 * asks, through the API (generated Connect client), BENCH_QUERY_RUNS (≥ 20,
 * default 60) times after a warm-up, the questions interleaved: p50/p95/p99.
 * Then four auditors of four tenants ask them at once (a third as many
 * rounds): p50/p95 of each question while the others' run. Writes both
 * tables to bench/RESULTS.md.
 *
 * BENCH_QUERY_STORE=DIR skips the load and runs on a copy of a store loaded
 * before (`node --import tsx bench/load-store.ts DIR ROWS`): for trying query
 * changes without waiting five minutes each time. Such runs write no results.
 */
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { StatsDimension, TimeBucket } from "../gen/auditlog/v1/query_pb.js";
import { mintToken } from "../src/auth/token.ts";
import { bearer, connectClients } from "../test/helpers/clients.ts";
import { removeDataDir, ROOT, startServer, tempDataDir, TEST_SECRET } from "../test/helpers/server.ts";
import { du, environmentLine, mib, percentile, run, writeResults } from "./common.ts";
import { realisticEvent } from "./realistic-events.ts";

const EVENTS = Number(process.env.BENCH_QUERY_EVENTS ?? 10_000_000);
const RUNS = Math.max(20, Number(process.env.BENCH_QUERY_RUNS ?? 60));
const HOUR = 3_600_000;

const LOADED = process.env.BENCH_QUERY_STORE;
const ANALYSTS = 4;

async function loadStore(dataDir: string) {
  if (LOADED) {
    cpSync(LOADED, dataDir, { recursive: true });
    return undefined;
  }
  console.log(`loading ${EVENTS} events...`);
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(ROOT, "bench/load-store.ts"), dataDir, String(EVENTS)], {
    cwd: ROOT,
    maxBuffer: 1024 * 1024,
  });
  const load = JSON.parse(stdout) as { rows: number; seconds: number; compressed: number; uncompressed: number };
  console.log(`loaded in ${load.seconds.toFixed(0)} s`);
  return load;
}

/** The questions an auditor of tenant-N asks, each returning how many results it got. */
async function questionsOf(clients: ReturnType<typeof connectClients>, tenant: number, now: number): Promise<[string, () => Promise<number>][]> {
  const token = await mintToken(TEST_SECRET, { tenant: `tenant-${tenant}`, roles: ["auditor"], subject: "bench", ttlSeconds: 3600 }, { tenant: "tenant", roles: "roles" });
  const auth = bearer(token);
  const weekAgoOnHour = Math.floor((now - 7 * 86_400_000) / HOUR) * HOUR;
  // A value the tenant has (load-store.ts gives event i to tenant i % 50).
  const attrValue = realisticEvent(tenant).attributes!.attr_0;
  const search = async (filter: Parameters<typeof clients.query.searchEvents>[0]["filter"]) =>
    (await clients.query.searchEvents({ filter, pageSize: 50 }, auth)).events.length;
  return [
    ["latest 50 of a tenant in 24 h", () => search({ startTime: timestampFromMs(now - 86_400_000) })],
    [`attribute equality (attr_0 = ${attrValue})`, () => search({ attributes: { attr_0: attrValue } })],
    // An id no event has: without the word index a scan reads every attribute of the tenant to say so.
    ["attribute equality, no match (order = ord-8d7f6a)", () => search({ attributes: { order: "ord-8d7f6a" } })],
    ["full-text word (declined)", () => search({ query: "declined" })],
    // A word no event has: a scan must read the whole tenant to say so.
    ["full-text word, no match (chargeback)", () => search({ query: "chargeback -type:auditlog.*" })],
    ["query-language mix", () => search({ query: 'type:billing.* attr.amount:>500 -action:UPDATE severity:>=WARNING "card" since:7d' })],
    ["stats by type × hour, 7 days", async () => (await clients.query.getStats({ filter: { startTime: timestampFromMs(weekAgoOnHour) }, groupBy: [StatsDimension.TYPE, StatsDimension.TIME], bucket: TimeBucket.HOUR, limit: 10_000 }, auth)).rows.length],
    ["type catalog", async () => (await clients.query.listEventTypes({}, auth)).types.length],
  ];
}

/**
 * ANALYSTS auditors of different tenants at once, each asking every question
 * in rounds from a different first question: what a question takes while the
 * others' run (the engine runs reads side by side; README, "Connections to
 * the store"). Times by question, all analysts together.
 */
async function askedAtOnce(baseUrl: string, now: number, rounds: number): Promise<{ times: number[][]; seconds: number }> {
  const analysts = await Promise.all(Array.from({ length: ANALYSTS }, (_, a) => questionsOf(connectClients(baseUrl, "connect-binary"), 7 + a, now)));
  const times = analysts[0].map(() => [] as number[]);
  const started = performance.now();
  await Promise.all(
    analysts.map(async (questions, a) => {
      for (let round = -1; round < rounds; round++) {
        for (let k = 0; k < questions.length; k++) {
          const q = (k + a * 2) % questions.length;
          const t0 = performance.now();
          await questions[q][1]();
          if (round >= 0) times[q].push(performance.now() - t0);
        }
      }
    }),
  );
  return { times, seconds: (performance.now() - started) / 1000 };
}

async function main() {
  const dataDir = tempDataDir();
  const load = await loadStore(dataDir);
  const disk = await du(join(dataDir, "chdb"));
  // The production batch windows (the test helper shortens them to 20 ms):
  // every read records its audit event, committed like in production.
  const server = await startServer({ dataDir, env: { AUDITLOG_BATCH_MAX_DELAY_MS: "100", AUDITLOG_READ_AUDIT_DELAY_MS: "1000" } });
  const clients = connectClients(server.baseUrl, "connect-binary");
  const now = Date.now();
  const questions = await questionsOf(clients, 7, now);
  const eventParts = async () => {
    const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
    return Number(/^auditlog_store_parts\{table="events",kind="parts"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
  };
  const partsBefore = await eventParts();
  let partsMax = partsBefore;
  // Round after round of every question once, not each question's runs in a
  // row: a stall of this shared machine (seconds long at times) then falls on
  // every question alike, instead of making one question's whole tail.
  const times = questions.map(() => [] as number[]);
  const results = questions.map(() => 0);
  for (let round = -3; round < RUNS; round++) {
    for (const [q, [, ask]] of questions.entries()) {
      const t0 = performance.now();
      results[q] = await ask();
      if (round >= 0) times[q].push(performance.now() - t0);
    }
    if (round % 10 === 0 || round === RUNS - 1) partsMax = Math.max(partsMax, await eventParts());
  }
  const rows = questions.map(([name], q) => {
    const row = { name, p50: percentile(times[q], 50), p95: percentile(times[q], 95), p99: percentile(times[q], 99), results: results[q] };
    console.log(`${name}: p50 ${row.p50.toFixed(1)} ms, p95 ${row.p95.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms (${row.results} results)`);
    return row;
  });
  // Each read's audit event is an INSERT into the reader's tenant (within
  // AUDITLOG_READ_AUDIT_DELAY_MS): small parts every read then opens.
  console.log(`events table: ${partsBefore} parts before the questions, up to ${partsMax} during them`);
  const atOnceRounds = Math.ceil(RUNS / 3);
  const atOnce = await askedAtOnce(server.baseUrl, now, atOnceRounds);
  const atOnceRows = questions.map(([name], q) => ({ name, p50: percentile(atOnce.times[q], 50), p95: percentile(atOnce.times[q], 95) }));
  console.log(`${ANALYSTS} analysts at once, ${atOnceRounds} rounds each in ${atOnce.seconds.toFixed(1)} s:`);
  for (const r of atOnceRows) console.log(`  ${r.name}: p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms`);
  await server.stop();
  removeDataDir(dataDir);
  if (!load) return;
  writeResults(
    [
      `## Queries — ${new Date().toISOString().slice(0, 16)}Z`,
      "",
      `${environmentLine()}; ${load.rows} realistic events over 30 days (50 tenants, so about ${Math.round(load.rows / 50)} per tenant), ` +
        `loaded straight into chDB in ${load.seconds.toFixed(0)} s; ${RUNS} rounds of every question after 3 warm-up rounds (interleaved, so the machine's stalls fall on all alike), through the API ` +
        "(Connect binary, one tenant's auditor; each read also records its audit event).",
      "",
      `Events table: ${mib(load.compressed)} MiB compressed, ${mib(load.uncompressed)} MiB uncompressed ` +
        `(${(load.uncompressed / load.compressed).toFixed(1)}×); ${mib(disk)} MiB on disk with rollups and ids. ` +
        `The events table had ${partsBefore} parts before the questions and up to ${partsMax} during them (the reads' own audit events, an INSERT a second).`,
      "",
      "| question | p50 ms | p95 ms | p99 ms | results |",
      "|---|---:|---:|---:|---:|",
      ...rows.map((r) => `| ${r.name} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.results} |`),
      "",
      `${ANALYSTS} auditors of tenants 7 to ${6 + ANALYSTS} at once, each asking every question of its own tenant ${atOnceRounds} times ` +
        `(rounds from different first questions; done in ${atOnce.seconds.toFixed(1)} s), 2 cores shared:`,
      "",
      "| question | p50 ms | p95 ms |",
      "|---|---:|---:|",
      ...atOnceRows.map((r) => `| ${r.name.replace(/ \(attr_0 = .*\)$/, " (attr_0 = a value of its tenant)")} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} |`),
      "",
    ].join("\n"),
  );
}

await main();
