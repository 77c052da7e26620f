import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { CLIENT_MADE_ID } from "./schema.ts";

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
 * For the fsynced `event_ids` and `checkpoints` only the newest insert can be
 * affected: inserts run one at a time per process, each after the previous
 * one committed. (The rollups: see ROLLUP_REPAIRS.)
 *
 * The rollups are repaired only on the embedded store (`rollups`): their
 * repair adds counts, and on a server shared with instances that are
 * inserting, the newest batch may be another instance's whose view part is
 * merely a few milliseconds behind; `event_ids` and `checkpoints` only gain
 * duplicate rows in that case, which change nothing.
 */
export async function repairDerivedTables(
  client: ClickHouseClient,
  log: Logger,
  /** Repair the rollups too (the embedded store). */
  rollups = false,
): Promise<void> {
  const statements: Record<string, string> = {
    // Windowed from the events' newest: event_ids' own can be old (it holds client-chosen ids only).
    event_ids: `INSERT INTO event_ids (tenant_id, id, received_at)
      SELECT tenant_id, id, toDateTime(received_at) FROM events
      WHERE received_at >= (SELECT max(received_at) FROM events) - ${WINDOW} AND ${CLIENT_MADE_ID}
        AND (tenant_id, id) NOT IN (SELECT tenant_id, id FROM event_ids WHERE received_at >= toDateTime((SELECT max(received_at) FROM events) - ${WINDOW}))`,
    checkpoints: `INSERT INTO checkpoints (tenant_id, chain_id, seq, head_hash, time, signature, key_id)
      SELECT tenant_id, chain_id, seq, hash, received_at, checkpoint_signature, checkpoint_key_id FROM events
      WHERE checkpoint_signature != '' AND received_at >= (SELECT max(time) FROM checkpoints) - ${WINDOW}
        AND (tenant_id, chain_id, seq) NOT IN (SELECT tenant_id, chain_id, seq FROM checkpoints WHERE time >= (SELECT max(time) FROM checkpoints) - ${WINDOW})`,
  };
  if (rollups) Object.assign(statements, ROLLUP_REPAIRS);
  await runRepairs(client, log, statements);
}

/**
 * The same for one batch whose INSERT failed, by its commit time: its events'
 * part may be committed without the parts of the views after the one that
 * failed. Bounded to that stamp, so on a server shared with instances that
 * inserted since it is still found, and it reads one partition, not the
 * newest seconds of the table. (The rollups: on the embedded store only, as
 * above; there this batch is the newest.)
 */
export async function repairFailedBatch(client: ClickHouseClient, log: Logger, receivedAtUs: number, rollups = false): Promise<void> {
  const at = `fromUnixTimestamp64Micro(${Math.trunc(receivedAtUs)}, 'UTC')`;
  const statements: Record<string, string> = {
    event_ids: `INSERT INTO event_ids (tenant_id, id, received_at)
      SELECT tenant_id, id, toDateTime(received_at) FROM events WHERE received_at = ${at} AND ${CLIENT_MADE_ID}
        AND (tenant_id, id) NOT IN (SELECT tenant_id, id FROM event_ids WHERE received_at = toDateTime(${at}))`,
    checkpoints: `INSERT INTO checkpoints (tenant_id, chain_id, seq, head_hash, time, signature, key_id)
      SELECT tenant_id, chain_id, seq, hash, received_at, checkpoint_signature, checkpoint_key_id FROM events
      WHERE received_at = ${at} AND checkpoint_signature != ''
        AND (tenant_id, chain_id, seq) NOT IN (SELECT tenant_id, chain_id, seq FROM checkpoints WHERE time = ${at})`,
  };
  if (rollups) Object.assign(statements, ROLLUP_REPAIRS);
  await runRepairs(client, log, statements);
}

async function runRepairs(client: ClickHouseClient, log: Logger, statements: Record<string, string>): Promise<void> {
  for (const [table, query] of Object.entries(statements)) {
    const before = await count(client, table);
    await client.command({ query });
    const added = (await count(client, table)) - before;
    if (added > 0) log.warn({ table, added }, "restored rows a crash kept from a materialized view");
  }
}

/**
 * The rollups' repair looks at the last two minutes of batches. On the
 * embedded store one process commits one batch at a time, so a crash of the
 * process can cut short only the newest; but the rollup tables are not
 * fsynced (that made a 1,000-event INSERT about 20% slower, bench/RESULTS.md),
 * so a power loss can take the views' parts of every batch whose files the
 * kernel had not yet written back (about 30 s), while the fsynced events
 * stay. Nothing else inserts while the store opens, so every batch in the
 * window is complete in `events`.
 *
 * - The hourly rollup: each row the window touches is recounted from the
 *   events and topped up by what it lacks. A rollup never holds more than
 *   the events (a view part exists only after its events' part), except
 *   where retention has removed events since: there a missing batch can be
 *   under-counted, never over-counted. (The window's own rows are of this
 *   week's receipts, which no retention has touched.)
 * - The catalog counts every event ever seen, retention or not, so counting
 *   again cannot tell; each of its rows carries the newest commit time it
 *   has counted (`last_received_at`), and each type gets the aggregates of
 *   its events in the window committed after that marker. After a power
 *   loss this assumes the views' parts were lost newest first (the kernel
 *   writes back the oldest dirty data first); a lost part older than a kept
 *   one of the same type stays uncounted.
 */
const RECENT = "received_at >= (SELECT max(received_at) FROM events) - INTERVAL 2 MINUTE";
const HOURLY_KEY = "tenant_id, hour, type, action, severity, outcome, source, received_week, retention_days";
const HOURS_TOUCHED = `SELECT DISTINCT tenant_id, toDateTime(toStartOfHour(time)) AS hour FROM events WHERE ${RECENT}`;
const ROLLUP_REPAIRS = {
  events_hourly: `INSERT INTO events_hourly (${HOURLY_KEY}, events)
    SELECT ${HOURLY_KEY}, stored.n - rolled.n FROM (
      SELECT tenant_id, toDateTime(toStartOfHour(time)) AS hour, type, action, severity, outcome, source,
        toMonday(received_at) AS received_week, retention_days, count() AS n FROM events
      WHERE (tenant_id, toDateTime(toStartOfHour(time))) IN (${HOURS_TOUCHED})
      GROUP BY ${HOURLY_KEY}
    ) AS stored
    LEFT JOIN (
      SELECT ${HOURLY_KEY}, sum(events) AS n FROM events_hourly
      WHERE (tenant_id, hour) IN (${HOURS_TOUCHED})
      GROUP BY ${HOURLY_KEY}
    ) AS rolled USING (${HOURLY_KEY})
    WHERE stored.n > rolled.n`,
  // A type the catalog has never counted joins no marker: the default, 1970, takes all its window's events.
  event_types: `INSERT INTO event_types (tenant_id, type, events, first_seen, last_seen, attribute_keys, last_received_at)
    SELECT tenant_id, type, count(), min(time), max(time),
      groupUniqArrayArray(arrayMap(k -> toString(k), mapKeys(attributes))), max(received_at)
    FROM events
    LEFT JOIN (
      SELECT tenant_id, type, max(last_received_at) AS counted_until FROM event_types
      WHERE (tenant_id, type) IN (SELECT DISTINCT tenant_id, type FROM events WHERE ${RECENT})
      GROUP BY tenant_id, type
    ) AS marker USING (tenant_id, type)
    WHERE ${RECENT} AND received_at > counted_until
    GROUP BY tenant_id, type`,
};

async function count(client: ClickHouseClient, table: string): Promise<number> {
  const result = await client.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" });
  const [{ n }] = await result.json<{ n: string }>();
  return Number(n);
}
