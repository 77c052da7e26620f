import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { isTransientStorageError, unavailable } from "../errors.ts";
import { dateTime64, insertRowTail, type EncodedRecord, type EventRecord } from "../store/event-row.ts";
import { arrivalEncoding } from "./arrival-encoding.ts";
import type { RowInserter } from "../store/client.ts";
import { encodedRowsBody, findStoredIds, idKey, insertEventRows } from "../store/event-writes.ts";
import type { Chainer } from "../integrity/chainer.ts";
import { nowMicros } from "../time.ts";
import { TIME_LEAD_OVER_RECEIPT_US } from "../store/receipt-lead.ts";

export interface PendingEvent {
  record: EncodedRecord;
  /** Only client-chosen ids can repeat; server-made UUIDv7s need no lookup. */
  clientId: boolean;
  /** UTF-8 size of the event (what a live tail's queue counts). */
  bytes: number;
  /** What the queued event holds in memory (`encodeOnArrival`): its weight in the batcher's bound. */
  weight: number;
}

/**
 * Memory a queued event holds beyond its encodings' bytes: its objects (the
 * record, its id and tenant, its buffer's). Measured by
 * test/unit/queue-weight.test.ts: a realistic event (25 fields, 8
 * attributes) holds about 1.4 KB while it waits, a minimal one 0.5 KB.
 */
const EVENT_OVERHEAD_BYTES = 256;

/**
 * Encodes what of an event does not depend on its commit (src/store/event-row.ts,
 * `EncodedRecord`), once its fields are final: on arrival, where it runs
 * alongside the insert in flight instead of in the one-batch-at-a-time
 * commit. The decoded record is left behind: the queue holds the encodings,
 * as UTF-8 outside the JavaScript heap, which scavenges do not copy.
 *
 * `weight` is what the event holds in memory while it waits, for the
 * batcher's bound (AUDITLOG_QUEUE_MAX_BYTES): its encodings' bytes and its
 * objects. Counting the UTF-8 size of the event alone once undercounted it 6×.
 */
export function encodeOnArrival(r: EventRecord): { record: EncodedRecord; weight: number } {
  const encoded = arrivalEncoding(r);
  const record = { tenantId: r.tenantId, id: r.id, timeUs: r.timeUs, encoded };
  return { record, weight: encoded.utf8.length + EVENT_OVERHEAD_BYTES };
}

/**
 * The earliest commit time a batch may get: its newest event's time minus
 * TIME_LEAD_OVER_RECEIPT_US, which reads rely on. Validation already keeps
 * times within 5 minutes of the clock; this holds the bound even when the
 * clock steps back between an event's arrival and its commit.
 */
export function receiptFloorUs(batch: PendingEvent[]): number {
  let newest = -Infinity;
  for (const { record } of batch) if (record.timeUs > newest) newest = record.timeUs;
  return newest - TIME_LEAD_OVER_RECEIPT_US;
}

/** Events of one committed batch, all stamped with the same `receivedAtUs`. */
export type CommittedListener = (events: PendingEvent[], receivedAtUs: number) => void;

export interface Committer {
  commit(batch: PendingEvent[]): Promise<boolean[]>;
  /**
   * A commit time every batch of this process is on one side of: all
   * batches stamped at or before it are committed, all later ones are not yet.
   * Readers use it as a snapshot bound, so an in-flight batch cannot appear
   * half-way through a paged read or an export.
   */
  settledUs(): number;
}

/**
 * The batcher's commit step: stamp the batch with its commit time, drop
 * events already stored under the same id (idempotent retries), insert the
 * rest as one block, then tell `onCommitted` (the live tail). Batches run one
 * at a time, so the lookup and the insert cannot race with another batch of
 * this process, and stamps increase strictly from batch to batch.
 */
export function createCommitter(deps: {
  client: ClickHouseClient;
  insertRows: RowInserter;
  /** Days an event of this tenant is kept, as its policy says now. */
  retentionDays: (tenant: string) => number;
  /** Days a client-chosen id is remembered for idempotent retries. */
  dedupWindowDays: number;
  log: Logger;
  onCommitted?: CommittedListener;
  /** Hash-chains and signs each batch; absent only when chaining is switched off. */
  chainer?: Chainer;
  /** Told of every batch once it is committed or has failed (metrics). */
  onBatch?: (batch: { events: number; seconds: number; failed: boolean }) => void;
  /**
   * Adds to the tables the views fill what the newest INSERT left out
   * (src/store/repair.ts). A failed INSERT may have committed its events'
   * part and not its views' (one view failing ends the INSERT after the
   * views before it have written): until this has run, a retry of those
   * events would not be found in `event_ids` and would be stored twice.
   */
  repairAfterFailedInsert?: (receivedAtUs: number) => Promise<void>;
}): Committer {
  let lastStampUs = nowMicros();
  /** The commit time of a failed INSERT not yet repaired, and how often its repair has failed. */
  let unrepaired: { receivedAtUs: number; attempts: number } | undefined;
  let inFlightStampUs: number | undefined;
  // Every later stamp exceeds any settled time handed out, even within one clock tick.
  let settledGivenUs = 0;

  async function commit(batch: PendingEvent[]): Promise<boolean[]> {
    const receivedAtUs = Math.max(nowMicros(), lastStampUs + 1, settledGivenUs + 1, receiptFloorUs(batch));
    lastStampUs = receivedAtUs;
    inFlightStampUs = receivedAtUs;
    try {
      return await commitStamped(batch, receivedAtUs);
    } finally {
      inFlightStampUs = undefined;
    }
  }

  async function commitStamped(batch: PendingEvent[], receivedAtUs: number): Promise<boolean[]> {
    const stored = new Array<boolean>(batch.length).fill(true);
    const seen = new Set<string>();
    const lookups: { tenantId: string; id: string }[] = [];
    batch.forEach(({ record, clientId }, i) => {
      // Only a client's id can come twice: the ids the server makes are new.
      if (!clientId) return;
      const key = idKey(record.tenantId, record.id);
      if (seen.has(key)) stored[i] = false;
      seen.add(key);
      lookups.push({ tenantId: record.tenantId, id: record.id });
    });
    const startedAt = performance.now();
    let failed = true;
    try {
      if (unrepaired && deps.repairAfterFailedInsert) {
        const failedBatch = unrepaired;
        try {
          await deps.repairAfterFailedInsert(failedBatch.receivedAtUs);
          unrepaired = undefined;
        } catch (err) {
          // While the store is away the batches fail anyway: keep the stamp for when it is back. A repair
          // refused by a store that answers is tried with three batches, then given up on, so it cannot stop ingest for good.
          if (!isTransientStorageError(err) && ++failedBatch.attempts >= 3) {
            unrepaired = undefined;
            deps.log.error({ err, receivedAtUs: failedBatch.receivedAtUs }, "could not repair after a failed insert; a retry of its events may be stored twice");
          } else throw err;
        }
      }
      const existing = await findStoredIds(deps.client, lookups, { nowMs: Date.now(), dedupWindowDays: deps.dedupWindowDays });
      const lookedUpAt = performance.now();
      const inserted = batch.filter((event, i) => {
        if (stored[i] && event.clientId && existing.has(idKey(event.record.tenantId, event.record.id))) stored[i] = false;
        return stored[i];
      });
      const advanceChains = deps.chainer ? await deps.chainer.link(inserted.map((e) => e.record), receivedAtUs) : () => {};
      const receivedAt = dateTime64(receivedAtUs);
      const body = encodedRowsBody(
        inserted.map((event) => event.record),
        (r) => insertRowTail(r.link, receivedAt, deps.retentionDays(r.tenantId)),
      );
      const serializedAt = performance.now();
      if (inserted.length > 0) {
        try {
          await insertEventRows(deps.insertRows, body);
        } catch (err) {
          deps.chainer?.forget();
          unrepaired = { receivedAtUs, attempts: 0 };
          throw err;
        }
        advanceChains();
        // No await between the insert and this call: a tail that subscribes
        // meanwhile either gets this batch live or finds it in storage.
        try {
          deps.onCommitted?.(inserted, receivedAtUs);
        } catch (err) {
          deps.log.error({ err }, "a commit listener failed; the batch is stored");
        }
      }
      const ms = (t: number) => Math.round(t * 10) / 10;
      deps.log.debug(
        {
          events: batch.length,
          inserted: inserted.length,
          lookupMs: ms(lookedUpAt - startedAt),
          rowsMs: ms(serializedAt - lookedUpAt),
          insertMs: ms(performance.now() - serializedAt),
        },
        "batch committed",
      );
      failed = false;
      return stored;
    } catch (err) {
      throw unavailable("storage did not accept the events; none of them is acknowledged; retry with the same event ids", err);
    } finally {
      deps.onBatch?.({ events: batch.length, seconds: (performance.now() - startedAt) / 1000, failed });
    }
  }

  return {
    commit,
    settledUs() {
      if (inFlightStampUs !== undefined) return inFlightStampUs - 1;
      // Never below a bound already handed out, even if the clock steps back.
      settledGivenUs = Math.max(settledGivenUs, nowMicros(), lastStampUs);
      return settledGivenUs;
    },
  };
}
