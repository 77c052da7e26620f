import { describe, expect, it } from "vitest";
import pino from "pino";
import { createCommitter, encodeOnArrival, receiptFloorUs, type PendingEvent } from "../../src/ingest/commit.ts";
import { INSERT_COLUMNS, recordFromEvent } from "../../src/store/event-row.ts";
import { sampleEvent } from "../helpers/events.ts";
import { createRecentWindows, partitionGrain, type StoreSpan } from "../../src/query/recent-windows.ts";
import { TIME_LEAD_OVER_RECEIPT_US } from "../../src/store/receipt-lead.ts";
import type { EncodedRecord, EventRecord } from "../../src/store/event-row.ts";

const HOUR = 3_600_000_000;
const DAY = 24 * HOUR;
const NOW = 1_800_000_000_000_000;

interface Stored {
  id: string;
  timeUs: number;
  receivedUs: number;
}

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A store as the service writes it: received over `days`, each event's time
 * anywhere from long before its receipt (backdated) up to the lead allowed
 * after it, with many at exactly the lead (the edge the page check relies on).
 */
function store(seed: number, events: number, days: number): Stored[] {
  const rnd = random(seed);
  return Array.from({ length: events }, (_, i) => {
    const receivedUs = NOW - Math.floor(rnd() * days * DAY);
    const shape = rnd();
    const timeUs =
      shape < 0.1 ? receivedUs - Math.floor(rnd() * 40 * DAY) : shape < 0.2 ? receivedUs + TIME_LEAD_OVER_RECEIPT_US : receivedUs - Math.floor(rnd() * HOUR);
    return { id: `e${String(i).padStart(5, "0")}`, timeUs, receivedUs };
  });
}

const newestFirst = (a: Stored, b: Stored) => b.timeUs - a.timeUs || (a.id < b.id ? 1 : -1);

/** SearchEvents' read over the synthetic store: matching, received since, newest first, limited. */
function reader(events: Stored[], match: (e: Stored) => boolean, rows: number, reads: (number | undefined)[]) {
  return async (sinceUs: number | undefined) => {
    reads.push(sinceUs);
    return events.filter((e) => match(e) && (sinceUs === undefined || e.receivedUs >= sinceUs)).sort(newestFirst).slice(0, rows);
  };
}

describe("newest-first pages from the recent partitions first", () => {
  const newestPage = createRecentWindows(async () => ({ oldestReceivedUs: NOW - 90 * DAY, partitions: "weekly" }));

  it("gives the page the whole store gives, for every density of matches, page size and cursor", async () => {
    const events = store(1, 12000, 90);
    let windowed = 0;
    for (const every of [1, 3, 50, 400, 5000]) {
      const match = (e: Stored) => Number(e.id.slice(1)) % every === 0;
      for (const rows of [1, 11, 101]) {
        for (const newestUs of [NOW + TIME_LEAD_OVER_RECEIPT_US, NOW - 3 * DAY, NOW - 20 * DAY]) {
          const inRange = (e: Stored) => match(e) && e.timeUs < newestUs;
          const reads: (number | undefined)[] = [];
          const page = await newestPage({ rows, newestUs, floorUs: undefined, lookup: false, read: reader(events, inRange, rows, reads), timeUsOf: (e) => e.timeUs });
          const whole = events.filter(inRange).sort(newestFirst).slice(0, rows);
          expect(page.map((e) => e.id), `every ${every}, ${rows} rows, newest ${(NOW - newestUs) / DAY} days ago`).toEqual(whole.map((e) => e.id));
          if (reads.at(-1) !== undefined) windowed++;
        }
      }
    }
    // Dense matches are answered from a window, not from the whole store.
    expect(windowed).toBeGreaterThan(10);
  });

  it("reads past the window when an event received just before it is newer than the window's page", async () => {
    const minutes = (n: number) => n * 60_000_000;
    const since = NOW - DAY;
    const events: Stored[] = [
      { id: "newest", timeUs: NOW - HOUR, receivedUs: NOW - HOUR },
      // In the window, with a time in the window's first hour.
      { id: "inside", timeUs: since + minutes(20), receivedUs: since + minutes(10) },
      // Received before the window, with its time the full lead after that: newer than "inside".
      { id: "before", timeUs: since - minutes(10) + TIME_LEAD_OVER_RECEIPT_US, receivedUs: since - minutes(10) },
    ];
    const reads: (number | undefined)[] = [];
    const page = await newestPage({ rows: 2, newestUs: NOW, floorUs: undefined, lookup: false, read: reader(events, () => true, 2, reads), timeUsOf: (e) => e.timeUs });
    expect(page.map((e) => e.id)).toEqual(["newest", "before"]);
    expect(reads).toEqual([since, undefined]);
  });

  it("accepts the window's page exactly when its last row is at least the lead newer than the window's start", async () => {
    const since = NOW - DAY;
    // The newest an event received before the window can be.
    const edge: Stored = { id: "edge", timeUs: since - 1 + TIME_LEAD_OVER_RECEIPT_US, receivedUs: since - 1 };
    for (const [lastUs, fromWindow] of [
      [since + TIME_LEAD_OVER_RECEIPT_US, true],
      [since + TIME_LEAD_OVER_RECEIPT_US - 1, false],
    ] as const) {
      const events: Stored[] = [{ id: "newest", timeUs: NOW, receivedUs: NOW }, { id: "last", timeUs: lastUs, receivedUs: since }, edge];
      const reads: (number | undefined)[] = [];
      const page = await newestPage({ rows: 2, newestUs: NOW, floorUs: undefined, lookup: false, read: reader(events, () => true, 2, reads), timeUsOf: (e) => e.timeUs });
      expect(reads, `last row at since + lead ${lastUs - since - TIME_LEAD_OVER_RECEIPT_US} µs`).toEqual(fromWindow ? [since] : [since, undefined]);
      expect(page.map((e) => e.id)).toEqual(events.sort(newestFirst).slice(0, 2).map((e) => e.id));
    }
  });

  it("answers a dense search from the last day alone, and an absent one from the whole store after it", async () => {
    const events = store(2, 6000, 90);
    const dense: (number | undefined)[] = [];
    await newestPage({ rows: 51, newestUs: NOW, floorUs: undefined, lookup: false, read: reader(events, () => true, 51, dense), timeUsOf: (e) => e.timeUs });
    expect(dense).toEqual([NOW - DAY]);
    const absent: (number | undefined)[] = [];
    await newestPage({ rows: 51, newestUs: NOW, floorUs: undefined, lookup: false, read: reader(events, () => false, 51, absent), timeUsOf: (e) => e.timeUs });
    expect(absent).toEqual([NOW - DAY, undefined]);
  });

  it("asks no window when the filter's own start or the store's age leaves little to skip", async () => {
    const events = store(3, 500, 30);
    const reads: (number | undefined)[] = [];
    const read = reader(events, () => false, 51, reads);
    const ask = (oldestUs: number, floorUs: number | undefined, partitions: StoreSpan["partitions"] = "weekly") =>
      createRecentWindows(async () => ({ oldestReceivedUs: oldestUs, partitions }))({ rows: 51, newestUs: NOW, floorUs, lookup: false, read, timeUsOf: (e) => e.timeUs });
    // A store of 90 days, a filter from 40 days ago: under the 6 weeks a window needs.
    await ask(NOW - 90 * DAY, NOW - 40 * DAY);
    expect(reads).toEqual([undefined]);
    reads.length = 0;
    await ask(NOW - 90 * DAY, NOW - 50 * DAY);
    expect(reads).toEqual([NOW - DAY, undefined]);
    reads.length = 0;
    // A store of a month, no filter bound: 5 or 6 weekly partitions.
    await ask(NOW - 30 * DAY, undefined);
    expect(reads).toEqual([undefined]);
    reads.length = 0;
    await ask(NOW - 50 * DAY, undefined);
    expect(reads).toEqual([NOW - DAY, undefined]);
    reads.length = 0;
    // A month of a store made when partitions were days: 31 of them, worth a window past 8 days.
    await ask(NOW - 30 * DAY, undefined, "daily");
    expect(reads).toEqual([NOW - DAY, undefined]);
    reads.length = 0;
    await ask(NOW - 7 * DAY, undefined, "daily");
    expect(reads).toEqual([undefined]);
  });

  it("tells a store partitioned by days from one partitioned by weeks by its partition key", () => {
    expect(partitionGrain("(toYYYYMMDD(received_at), retention_days)")).toBe("daily");
    expect(partitionGrain("(toMonday(received_at), retention_days)")).toBe("weekly");
  });

  it("asks no window for a lookup of an identifier, whose few matches rarely fill a page in a day", async () => {
    const reads: (number | undefined)[] = [];
    await newestPage({ rows: 51, newestUs: NOW, floorUs: undefined, lookup: true, read: reader(store(4, 500, 30), () => true, 51, reads), timeUsOf: (e) => e.timeUs });
    expect(reads).toEqual([undefined]);
  });
});

describe("the commit stamp keeps the bound reads rely on", () => {
  const pending = (timeUs: number) => ({ record: { timeUs } as EncodedRecord, clientId: false, bytes: 0, weight: 0 }) satisfies PendingEvent;

  it("is at least the newest time of the batch less the lead", () => {
    expect(receiptFloorUs([pending(NOW - DAY), pending(NOW + 5 * 60_000_000), pending(NOW)])).toBe(NOW + 5 * 60_000_000 - TIME_LEAD_OVER_RECEIPT_US);
  });

  it("stamps a batch no earlier than that, even when the clock is behind its events (stepped back)", async () => {
    const bodies: string[] = [];
    const committer = createCommitter({
      // Server-made ids need no lookup, so the client is never asked; the insert is captured.
      client: undefined as never,
      insertRows: async (_table, _columns, body) => void bodies.push(body.toString("utf8")),
      retentionDays: () => 90,
      dedupWindowDays: 7,
      log: pino({ level: "silent" }),
    });
    const aheadUs = Date.now() * 1000 + 3 * HOUR;
    const { record } = encodeOnArrival({ ...recordFromEvent(sampleEvent(1, { tenantId: "t" })), tenantId: "t", timeUs: aheadUs } as EventRecord);
    expect(await committer.commit([{ record, clientId: false, bytes: 0, weight: 0 }])).toEqual([true]);
    const [row] = bodies.map((b) => JSON.parse(b) as unknown[]);
    const receivedAt = row[INSERT_COLUMNS.indexOf("received_at")] as string;
    expect(Date.parse(`${receivedAt.replace(" ", "T")}Z`) * 1000).toBeGreaterThanOrEqual(aheadUs - TIME_LEAD_OVER_RECEIPT_US);
  });
});
