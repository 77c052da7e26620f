import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";

// Wide enough for the last insert of each instance on a shared server, small enough to stay cheap.
const WINDOW = "INTERVAL 10 SECOND";

/**
 * An INSERT into `events` also fills tables through materialized views, but
 * not atomically: ClickHouse commits the events' part first and each view's
 * part after it, so a crash in between leaves events that `event_ids` (the
 * idempotency lookup), `checkpoints` and the two rollups do not know. A retry
 * of such an event would then be stored twice (found by the crash test), and
 * stats and the type catalog would miss the batch. On every start, the last
 * seconds of events are checked against each and what is missing is added.
 * Only the newest insert can be affected: inserts run one at a time per
 * process, each after the previous one committed.
 *
 * The rollups are repaired only on the embedded store (`rollups`). Their
 * repair adds counts, so on a server shared with instances that are
 * inserting, it could count a batch whose view part is merely a few
 * milliseconds behind; `event_ids` and `checkpoints` only gain duplicate rows
 * in that case, which change nothing.
 */
export async function repairDerivedTables(client: ClickHouseClient, log: Logger, options: { rollups: boolean }): Promise<void> {
  const statements: Record<string, string> = {
    event_ids: `INSERT INTO event_ids (tenant_id, id, received_at)
      SELECT tenant_id, id, toDateTime(received_at) FROM events
      WHERE received_at >= (SELECT max(received_at) FROM event_ids) - ${WINDOW}
        AND (tenant_id, id) NOT IN (SELECT tenant_id, id FROM event_ids WHERE received_at >= (SELECT max(received_at) FROM event_ids) - ${WINDOW})`,
    checkpoints: `INSERT INTO checkpoints (tenant_id, chain_id, seq, head_hash, time, signature, key_id)
      SELECT tenant_id, chain_id, seq, hash, received_at, checkpoint_signature, checkpoint_key_id FROM events
      WHERE checkpoint_signature != '' AND received_at >= (SELECT max(time) FROM checkpoints) - ${WINDOW}
        AND (tenant_id, chain_id, seq) NOT IN (SELECT tenant_id, chain_id, seq FROM checkpoints WHERE time >= (SELECT max(time) FROM checkpoints) - ${WINDOW})`,
  };
  if (options.rollups) Object.assign(statements, ROLLUP_REPAIRS);
  for (const [table, query] of Object.entries(statements)) {
    const before = await count(client, table);
    await client.command({ query });
    const added = (await count(client, table)) - before;
    if (added > 0) log.warn({ table, added }, "restored rows a crash kept from a materialized view");
  }
}

/**
 * Each rollup row that the newest batch touches is recounted from the events
 * and topped up by what it lacks. On the embedded store one process commits
 * one batch at a time, all its events stamped with one `received_at`, so the
 * newest stamp is exactly the batch a crash can have cut short. A rollup never
 * holds more than the events (a view part exists only after its events'
 * part), except where retention has since removed events: there a missing
 * batch can be under-counted, never over-counted.
 */
const NEWEST_BATCH = "received_at = (SELECT max(received_at) FROM events)";
const HOURS_TOUCHED = `SELECT DISTINCT tenant_id, toDateTime(toStartOfHour(time)) FROM events WHERE ${NEWEST_BATCH}`;
const TYPES_TOUCHED = `SELECT DISTINCT tenant_id, type FROM events WHERE ${NEWEST_BATCH}`;
const HOURLY_KEY = "tenant_id, hour, type, action, severity, outcome, source";
const ROLLUP_REPAIRS = {
  events_hourly: `INSERT INTO events_hourly (${HOURLY_KEY}, events)
    SELECT ${HOURLY_KEY}, stored.n - rolled.n FROM (
      SELECT tenant_id, toDateTime(toStartOfHour(time)) AS hour, type, action, severity, outcome, source, count() AS n FROM events
      WHERE (tenant_id, toDateTime(toStartOfHour(time))) IN (${HOURS_TOUCHED})
      GROUP BY ${HOURLY_KEY}
    ) AS stored
    LEFT JOIN (
      SELECT ${HOURLY_KEY}, sum(events) AS n FROM events_hourly
      WHERE (tenant_id, hour) IN (${HOURS_TOUCHED})
      GROUP BY ${HOURLY_KEY}
    ) AS rolled USING (${HOURLY_KEY})
    WHERE stored.n > rolled.n`,
  // Counts are recounted over all of a type's events; first and last seen and
  // the attribute keys merge by min, max and union, so the batch's own suffice.
  event_types: `INSERT INTO event_types (tenant_id, type, events, first_seen, last_seen, attribute_keys)
    SELECT tenant_id, type, stored.n - rolled.n, recent.first_seen, recent.last_seen, recent.attribute_keys FROM (
      SELECT tenant_id, type, min(time) AS first_seen, max(time) AS last_seen,
        groupUniqArrayArray(arrayMap(k -> toString(k), mapKeys(attributes))) AS attribute_keys
      FROM events WHERE ${NEWEST_BATCH} GROUP BY tenant_id, type
    ) AS recent
    INNER JOIN (
      SELECT tenant_id, type, count() AS n FROM events WHERE (tenant_id, type) IN (${TYPES_TOUCHED}) GROUP BY tenant_id, type
    ) AS stored USING (tenant_id, type)
    LEFT JOIN (
      SELECT tenant_id, type, sum(events) AS n FROM event_types WHERE (tenant_id, type) IN (${TYPES_TOUCHED}) GROUP BY tenant_id, type
    ) AS rolled USING (tenant_id, type)
    WHERE stored.n > rolled.n`,
};

async function count(client: ClickHouseClient, table: string): Promise<number> {
  const result = await client.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" });
  const [{ n }] = await result.json<{ n: string }>();
  return Number(n);
}
