import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";

/**
 * An INSERT into `events` also fills tables through materialized views, but
 * not atomically: ClickHouse commits the events' part first and each view's
 * part after it, so a crash in between leaves events that `event_ids` (the
 * idempotency lookup) and `checkpoints` do not know. A retry of such an
 * event would then be stored twice (found by the crash test). On every
 * start, the last seconds of events are checked against both and what is
 * missing is added. Only the newest insert can be affected: inserts run one
 * at a time per process, each after the previous one committed.
 */
export async function repairDerivedTables(client: ClickHouseClient, log: Logger): Promise<void> {
  // Wide enough for the last insert of each instance on a shared server, small enough to stay cheap.
  const WINDOW = "INTERVAL 10 SECOND";
  const statements = {
    event_ids: `INSERT INTO event_ids (tenant_id, id, received_at)
      SELECT tenant_id, id, toDateTime(received_at) FROM events
      WHERE received_at >= (SELECT max(received_at) FROM event_ids) - ${WINDOW}
        AND (tenant_id, id) NOT IN (SELECT tenant_id, id FROM event_ids WHERE received_at >= (SELECT max(received_at) FROM event_ids) - ${WINDOW})`,
    checkpoints: `INSERT INTO checkpoints (tenant_id, chain_id, seq, head_hash, time, signature, key_id)
      SELECT tenant_id, chain_id, seq, hash, received_at, checkpoint_signature, checkpoint_key_id FROM events
      WHERE checkpoint_signature != '' AND received_at >= (SELECT max(time) FROM checkpoints) - ${WINDOW}
        AND (tenant_id, chain_id, seq) NOT IN (SELECT tenant_id, chain_id, seq FROM checkpoints WHERE time >= (SELECT max(time) FROM checkpoints) - ${WINDOW})`,
  };
  for (const [table, query] of Object.entries(statements)) {
    const before = await count(client, table);
    await client.command({ query });
    const added = (await count(client, table)) - before;
    if (added > 0) log.warn({ table, added }, "restored rows a crash kept from a materialized view");
  }
}

async function count(client: ClickHouseClient, table: string): Promise<number> {
  const result = await client.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" });
  const [{ n }] = await result.json<{ n: string }>();
  return Number(n);
}
