import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { unavailable } from "../errors.ts";
import { toInsertRow, type EventRecord } from "../store/event-row.ts";
import { findStoredIds, idKey, insertEventRows } from "../store/event-writes.ts";
import { nowMicros } from "../time.ts";

export interface PendingEvent {
  record: EventRecord;
  /** Only client-chosen ids can repeat; server-made UUIDv7s need no lookup. */
  clientId: boolean;
  /** UTF-8 size of the event: what it weighs in the batcher's memory bound. */
  bytes: number;
}

/**
 * The batcher's commit step: stamp the batch with its commit time, drop
 * events already stored under the same id (idempotent retries), insert the
 * rest as one block. Batches run one at a time, so the lookup and the insert
 * cannot race with another batch of this process.
 */
export function createCommitter(deps: { client: ClickHouseClient; retentionDays: number; log: Logger }) {
  let lastStampUs = nowMicros();

  async function commit(batch: PendingEvent[]): Promise<boolean[]> {
    const receivedAtUs = Math.max(nowMicros(), lastStampUs + 1);
    lastStampUs = receivedAtUs;
    const stored = new Array<boolean>(batch.length).fill(true);
    const seen = new Set<string>();
    const lookups: { tenantId: string; id: string }[] = [];
    batch.forEach(({ record, clientId }, i) => {
      const key = idKey(record.tenantId, record.id);
      if (seen.has(key)) stored[i] = false;
      seen.add(key);
      if (clientId) lookups.push({ tenantId: record.tenantId, id: record.id });
    });
    const startedAt = performance.now();
    try {
      const existing = await findStoredIds(deps.client, lookups);
      const lookedUpAt = performance.now();
      const rows: unknown[][] = [];
      batch.forEach(({ record }, i) => {
        if (stored[i] && existing.has(idKey(record.tenantId, record.id))) stored[i] = false;
        if (stored[i]) rows.push(toInsertRow(record, receivedAtUs, deps.retentionDays));
      });
      const serializedAt = performance.now();
      if (rows.length > 0) await insertEventRows(deps.client, rows);
      const ms = (t: number) => Math.round(t * 10) / 10;
      deps.log.debug(
        {
          events: batch.length,
          inserted: rows.length,
          lookupMs: ms(lookedUpAt - startedAt),
          rowsMs: ms(serializedAt - lookedUpAt),
          insertMs: ms(performance.now() - serializedAt),
        },
        "batch committed",
      );
      return stored;
    } catch (err) {
      throw unavailable("storage did not accept the events; none of them is acknowledged; retry with the same event ids", err);
    }
  }

  return commit;
}
