import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExportFormat } from "../../gen/auditlog/v1/query_pb.js";
import { TIME_LEAD_OVER_RECEIPT_US } from "../../src/store/receipt-lead.ts";
import { appendAll, searchAllJson } from "../helpers/bulk.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { scrapeMetrics } from "../helpers/metrics.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { runStoreSql } from "../helpers/store-sql.ts";

/**
 * Searches over a store that spans many days of received_at (partitions are
 * its weeks), where a newest-first page is read from the last day first
 * (src/query/recent-windows.ts): the answers must be those of the whole store.
 */
let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let auditor: string;

const MINUTE = 60_000_000;
const DAY = 1440 * MINUTE;
const T0 = Date.now() * 1000;

interface Planted {
  id: string;
  timeUs: number;
  receivedUs: number;
}

/** Events written as if received on earlier days, straight into the store. */
const PLANTED: Planted[] = [
  // Old enough that the store spans more than the span the window needs.
  ...Array.from({ length: 6 }, (_, i) => ({ id: `day50-${i}`, timeUs: T0 - 50 * DAY - i * MINUTE, receivedUs: T0 - 50 * DAY })),
  ...Array.from({ length: 2 }, (_, i) => ({ id: `day12-${i}`, timeUs: T0 - 12 * DAY - i * MINUTE, receivedUs: T0 - 12 * DAY })),
  ...Array.from({ length: 3 }, (_, i) => ({ id: `day5-${i}`, timeUs: T0 - 5 * DAY - i * MINUTE, receivedUs: T0 - 5 * DAY })),
  // Just inside the last day's window, with times in its first hour...
  { id: "inside-1", timeUs: T0 - DAY + 10 * MINUTE, receivedUs: T0 - DAY + 5 * MINUTE },
  { id: "inside-2", timeUs: T0 - DAY + 8 * MINUTE, receivedUs: T0 - DAY + 5 * MINUTE },
  // ...and one received before it whose time is ahead of its receipt (as far as allowed): newer than both.
  { id: "before-edge", timeUs: T0 - DAY - 10 * MINUTE + TIME_LEAD_OVER_RECEIPT_US, receivedUs: T0 - DAY - 10 * MINUTE },
  // Backdated: received three days ago, dated forty days ago.
  { id: "backdated", timeUs: T0 - 40 * DAY, receivedUs: T0 - 3 * DAY },
];
const TODAY = Array.from({ length: 4 }, (_, i) => sampleEvent(i, { id: `today-${i}`, source: "windows", time: timestampFromMs((T0 - i * MINUTE) / 1000) }));

const micros = (us: number) => `fromUnixTimestamp64Micro(${us}, 'UTC')`;

beforeAll(async () => {
  server = await startServer();
  clients = connectClients(server.baseUrl, "connect-binary");
  await appendAll(clients, await server.token("win", ["writer"]), TODAY);
  await server.stop();
  runStoreSql(server.dataDir, [
    `INSERT INTO events (tenant_id, id, time, type, action, source, message, received_at, retention_days) VALUES ${PLANTED.map(
      (p) => `('win', '${p.id}', ${micros(p.timeUs)}, 'planted', 'VIEW', 'windows', 'planted event', ${micros(p.receivedUs)}, 3650)`,
    ).join(", ")}`,
  ]);
  server = await startServer({ dataDir: server.dataDir });
  clients = connectClients(server.baseUrl, "connect-binary");
  auditor = await server.token("win", ["auditor"]);
});
afterAll(async () => {
  await server.stop();
  removeDataDir(server.dataDir);
});

const ALL = [...TODAY.map((e) => ({ id: e.id, timeUs: T0 - Number(e.id.slice(-1)) * MINUTE })), ...PLANTED];
const newestFirst = (events: { id: string; timeUs: number }[]) =>
  [...events].sort((a, b) => b.timeUs - a.timeUs || (a.id < b.id ? 1 : -1)).map((e) => e.id);

describe("a store of many days", () => {
  it("spans several partitions", () => {
    // The planted rows went to partitions of three weeks or more (Monday to Sunday; day 0 of Unix time was a Thursday); otherwise this test proves nothing.
    expect(new Set(PLANTED.map((p) => Math.floor((Math.floor(p.receivedUs / DAY) + 3) / 7))).size).toBeGreaterThanOrEqual(3);
  });

  it("gives the newest page the whole store gives, an event received before the last day included", async () => {
    const page = await clients.query.searchEvents({ filter: { sources: ["windows"] }, pageSize: 5 }, bearer(auditor));
    expect(page.events.map((e) => e.id)).toEqual(newestFirst(ALL).slice(0, 5));
    expect(page.events.map((e) => e.id)).toContain("before-edge");
  });

  it.each([1, 2, 3, 7, 100])("pages through every event once, in order, %i at a time", async (pageSize) => {
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await clients.query.searchEvents({ filter: { sources: ["windows"] }, pageSize, pageToken }, bearer(auditor));
      seen.push(...page.events.map((e) => e.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(newestFirst(ALL));
  });

  it("finds what only older days hold, and bounded searches alike", async () => {
    const ids = async (filter: Parameters<typeof searchAllJson>[2]) => (await searchAllJson(clients, auditor, filter)).map((e) => e.id);
    expect(await ids({ sources: ["windows"], types: ["planted"], query: "-id:backdated" })).toEqual(newestFirst(PLANTED.filter((p) => p.id !== "backdated")));
    expect(await ids({ query: "id:backdated" })).toEqual(["backdated"]);
    expect(await ids({ sources: ["windows"], startTime: timestampFromMs((T0 - 6 * DAY) / 1000) })).toEqual(
      newestFirst(ALL.filter((e) => e.timeUs >= T0 - 6 * DAY)),
    );
    // Received before the start, dated after it: the partition bound must leave it in.
    const start = T0 - DAY + 30 * MINUTE;
    expect(await ids({ sources: ["windows"], startTime: timestampFromMs(start / 1000) })).toEqual(newestFirst(ALL.filter((e) => e.timeUs >= start)));
    expect(await ids({ sources: ["windows"], startTime: timestampFromMs(start / 1000) })).toContain("before-edge");
    expect(await ids({ query: "source:windows since:2d" })).toEqual(newestFirst(ALL.filter((e) => e.timeUs >= T0 - 2 * DAY)));
    expect(await ids({ sources: ["windows"], endTime: timestampFromMs((T0 - 4 * DAY) / 1000) })).toEqual(
      newestFirst(ALL.filter((e) => e.timeUs < T0 - 4 * DAY)),
    );
  });

  it("exports from a start time every event dated after it, one received before it included", async () => {
    const start = T0 - DAY + 30 * MINUTE;
    const chunks: Uint8Array[] = [];
    const request = { filter: { sources: ["windows"], startTime: timestampFromMs(start / 1000) }, format: ExportFormat.NDJSON };
    for await (const msg of clients.query.exportEvents(request, bearer(auditor))) chunks.push(msg.data);
    const exported = Buffer.concat(chunks).toString("utf8").trim().split("\n").map((line) => (JSON.parse(line) as { id: string }).id);
    expect(exported.sort()).toEqual(ALL.filter((e) => e.timeUs >= start).map((e) => e.id).sort());
    expect(exported).toContain("before-edge");
  });

  it("replays on a tail, from a start time, every event dated after it, one received before it included", async () => {
    const start = T0 - DAY + 30 * MINUTE;
    const request = { filter: { sources: ["windows"], startTime: timestampFromMs(start / 1000) }, since: timestampFromMs((T0 - 30 * DAY) / 1000) };
    const abort = new AbortController();
    const replayed: string[] = [];
    for await (const msg of clients.query.tailEvents(request, { ...bearer(auditor), signal: abort.signal })) {
      replayed.push(...msg.events.map((e) => e.id));
      if (msg.live) break;
    }
    abort.abort();
    expect(replayed.sort()).toEqual(ALL.filter((e) => e.timeUs >= start).map((e) => e.id).sort());
    expect(replayed).toContain("before-edge");
  });

  it("counts the same in stats from raw events over a time range", async () => {
    const stats = await clients.query.getStats(
      { filter: { startTime: timestampFromMs((T0 - 6 * DAY) / 1000), query: "source:windows" }, groupBy: [] },
      bearer(auditor),
    );
    expect(stats.fromRollup).toBe(false);
    expect(Number(stats.total)).toBe(ALL.filter((e) => e.timeUs >= T0 - 6 * DAY).length);
  });

  it("reads from the last day when it holds the page, and says in /metrics how each page was read", async () => {
    const outcomes = async () => {
      const metrics = await scrapeMetrics(server.baseUrl);
      return Object.fromEntries(["answered", "fell_back", "skipped"].map((outcome) => [outcome, metrics.count("auditlog_search_recent_window_total", { outcome })]));
    };
    const search = async (filter: { requestId?: string }, pageSize: number) =>
      (await clients.query.searchEvents({ filter: { sources: ["windows"], ...filter }, pageSize }, bearer(auditor))).events.map((e) => e.id);
    const before = await outcomes();
    // The page and the row after it are today's: the last day answers.
    expect(await search({}, 2)).toEqual(newestFirst(ALL).slice(0, 2));
    // The sixth row of the day is within an hour of its start: the whole store is asked again.
    expect(await search({}, 5)).toEqual(newestFirst(ALL).slice(0, 5));
    // A lookup of an identifier goes to the whole store at once.
    expect(await search({ requestId: "req-0" }, 5)).toEqual(["today-0", "today-1", "today-2"]);
    const after = await outcomes();
    expect({ answered: after.answered - before.answered, fell_back: after.fell_back - before.fell_back, skipped: after.skipped - before.skipped }).toEqual({
      answered: 1,
      fell_back: 1,
      skipped: 1,
    });
  });
});
