import type { ClickHouseClient } from "@clickhouse/client";
import { TIME_LEAD_OVER_RECEIPT_US } from "../store/receipt-lead.ts";

const DAY_US = 86_400_000_000;

/** The window of received_at a newest-first page is asked of before the whole store. */
const WINDOW_US = DAY_US;

/**
 * The window is tried only when the whole would span more than this. A
 * window that fails costs a query, and a store of a few weekly partitions
 * has few parts to open anyway: on 10M events through the API, the window
 * saved 4 ms on a common word over a month (5 partitions) but cost 10–15 ms
 * on a word no event has; over 90 days (14 partitions) it saved 12–16 ms and
 * cost 10–14 (README, "Reading only the weeks that can hold the answer").
 * A store created when partitions were days (its key cannot change) opens
 * seven times the parts for the same span: the window halved a common
 * word's time over a month of those, so it is tried past 8 days there.
 */
const MIN_SPAN_US = { weekly: 6 * 7 * DAY_US, daily: 8 * DAY_US };

/** What decides whether a window can pay: how far back the store goes, and how finely it is partitioned. */
export interface StoreSpan {
  oldestReceivedUs: number;
  partitions: keyof typeof MIN_SPAN_US;
}

/** How long the store's oldest received_at is trusted. */
const OLDEST_TTL_MS = 60_000;

/**
 * Reads the newest page of a search from the most recent partitions first.
 *
 * The events table is partitioned by weeks of `received_at`, and a search
 * without a time bound opens every week the store keeps (each with its own
 * index lookups and its own newest granules to read) even when its page lies
 * in the last day.
 * Events received before R have times before R + TIME_LEAD_OVER_RECEIPT_US,
 * so a page read from the events received since R is the true page when its
 * oldest row (the one after the page, which decides whether there is a
 * next) is at least that recent. Otherwise the whole store is asked: the
 * answer is always the whole store's, only the work differs. A search whose
 * page is not in the last day pays one small query more (10–15 ms through
 * the API on 10M events), so lookups of an identifier, whose few matches
 * rarely fill a page in a day, skip the window.
 */
/** How a page was read: from the last day's window, from the whole store after the window fell short, or from the whole store at once. */
export type WindowOutcome = "answered" | "fell_back" | "skipped";

export function createRecentWindows(storeSpan: () => Promise<StoreSpan>, onOutcome: (outcome: WindowOutcome) => void = () => {}) {
  /**
   * `read(sinceUs)` returns the first `rows` rows in newest-first order among
   * the events received at or after `sinceUs` (all of them when undefined).
   * `newestUs`: where the page starts, about (the cursor, the filter's end,
   * or the snapshot; rows may be up to the lead newer than a snapshot): it
   * places the window, and only decides the work, never the answer.
   * `floorUs`: the filter's own lower bound on `time`, if any.
   */
  return async function newestPage<Row>(opts: {
    rows: number;
    newestUs: number;
    floorUs: number | undefined;
    /** The filter looks up an identifier: its page is rarely in the last day, so no window is tried. */
    lookup: boolean;
    read: (sinceUs: number | undefined) => Promise<Row[]>;
    timeUsOf: (row: Row) => number;
  }): Promise<Row[]> {
    if (opts.lookup) {
      onOutcome("skipped");
      return opts.read(undefined);
    }
    const store = await storeSpan();
    const earliestUs = Math.max(store.oldestReceivedUs, opts.floorUs === undefined ? -Infinity : opts.floorUs - TIME_LEAD_OVER_RECEIPT_US);
    if (opts.newestUs - earliestUs > MIN_SPAN_US[store.partitions]) {
      const sinceUs = opts.newestUs - WINDOW_US;
      const page = await opts.read(sinceUs);
      if (page.length >= opts.rows && opts.timeUsOf(page[opts.rows - 1]) >= sinceUs + TIME_LEAD_OVER_RECEIPT_US) {
        onOutcome("answered");
        return page;
      }
      onOutcome("fell_back");
    } else onOutcome("skipped");
    return opts.read(undefined);
  };
}

/**
 * The store's oldest received_at and the grain of its partitions, read at
 * most once a minute (only retention raises the oldest; a stale value costs
 * work, never answers).
 */
export function cachedStoreSpan(client: ClickHouseClient): () => Promise<StoreSpan> {
  let cached: { span: StoreSpan; at: number } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < OLDEST_TTL_MS) return cached.span;
    const result = await client.query({
      query: `SELECT toUnixTimestamp64Micro(min(received_at)) AS us,
          (SELECT partition_key FROM system.tables WHERE database = currentDatabase() AND name = 'events') AS partition_key
        FROM events`,
      format: "JSONEachRow",
    });
    const [row] = await result.json<{ us: string; partition_key: string }>();
    cached = { span: { oldestReceivedUs: Number(row?.us ?? 0), partitions: partitionGrain(row?.partition_key ?? "") }, at: Date.now() };
    return cached.span;
  };
}

/** Days for a store created before partitions became weeks (`toYYYYMMDD(received_at)`), weeks otherwise. */
export function partitionGrain(partitionKey: string): StoreSpan["partitions"] {
  return partitionKey.includes("toYYYYMMDD(") ? "daily" : "weekly";
}
