import type { ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";

/**
 * The events table. Choices, each for a reason:
 * - ORDER BY (tenant_id, time, id): every read is scoped to one tenant and
 *   most ask for a time range newest-first; `id` makes the order total so
 *   keyset paging never skips or repeats.
 * - received_at is server-set at commit; retention (TTL) and partitions hang
 *   off it and the per-row retention_days, never off the client's `time`, so a
 *   back- or forward-dated event cannot change how long it is kept. With
 *   retention_days in the partition key every part has one expiry and
 *   ttl_only_drop_parts drops whole parts instead of rewriting them.
 * - severity and outcome are Enum8 so `severity >= WARNING` is a number compare.
 * - Bloom filters on the ids people look up one at a time (id, request_id).
 * - fsync_after_insert: an acknowledged insert is on disk, not only in the
 *   page cache (AUDITLOG_FSYNC=false trades that for throughput).
 * - The hash chain (chain_id, seq, prev_hash, hash) and, on the event that
 *   ends a batch's stretch of a chain, the signed checkpoint: stored in the
 *   same INSERT as the events, so a checkpoint never exists without its events.
 */
function eventsTable(config: StoreConfig): string {
  return `
CREATE TABLE IF NOT EXISTS events
(
  tenant_id LowCardinality(String),
  id String CODEC(ZSTD(1)),
  time DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
  utc_offset_minutes Int16,
  type LowCardinality(String),
  action LowCardinality(String),
  outcome Enum8('UNSPECIFIED' = 0, 'SUCCESS' = 1, 'FAILURE' = 2),
  severity Enum8('UNSPECIFIED' = 0, 'INFO' = 1, 'WARNING' = 2, 'ERROR' = 3, 'CRITICAL' = 4),
  actor_id String CODEC(ZSTD(1)),
  actor_type LowCardinality(String),
  actor_name String CODEC(ZSTD(1)),
  actor_session_id String CODEC(ZSTD(1)),
  actor_ip String CODEC(ZSTD(1)),
  actor_user_agent String CODEC(ZSTD(1)),
  resource_type LowCardinality(String),
  resource_id String CODEC(ZSTD(1)),
  resource_name String CODEC(ZSTD(1)),
  source LowCardinality(String),
  request_id String CODEC(ZSTD(1)),
  message String CODEC(ZSTD(1)),
  attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
  before String CODEC(ZSTD(1)),
  after String CODEC(ZSTD(1)),
  received_at DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
  retention_days UInt16,
${CHAIN_COLUMNS.map((c) => `  ${c},`).join("\n")}
  INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1,
  INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY (toYYYYMMDD(received_at), retention_days)
ORDER BY (tenant_id, time, id)
TTL toDateTime(received_at) + toIntervalDay(retention_days)
SETTINGS ttl_only_drop_parts = 1, fsync_after_insert = ${config.fsync ? 1 : 0}, fsync_part_directory = ${config.fsync ? 1 : 0}`;
}

/** Added after the first release: created with the table, or added to an existing one. */
const CHAIN_COLUMNS = [
  "chain_id LowCardinality(String)",
  "seq UInt64",
  "prev_hash String CODEC(ZSTD(1))",
  "hash String CODEC(ZSTD(1))",
  "checkpoint_signature String CODEC(ZSTD(1))",
  "checkpoint_key_id LowCardinality(String)",
];

/**
 * Every signed checkpoint, kept beyond the events' retention (a few bytes per
 * batch): the newest events cannot be removed without the checkpoints showing
 * it, and verification after TTL deletion starts from the oldest retained one.
 */
const checkpointsTable = (config: StoreConfig) => [
  `CREATE TABLE IF NOT EXISTS checkpoints
(
  tenant_id LowCardinality(String),
  chain_id LowCardinality(String),
  seq UInt64,
  head_hash String,
  time DateTime64(6, 'UTC'),
  signature String,
  key_id LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (tenant_id, chain_id, seq)
SETTINGS fsync_after_insert = ${config.fsync ? 1 : 0}`,
  `CREATE MATERIALIZED VIEW IF NOT EXISTS checkpoints_mv TO checkpoints AS
SELECT tenant_id, chain_id, seq, hash AS head_hash, received_at AS time, checkpoint_signature AS signature, checkpoint_key_id AS key_id
FROM events WHERE checkpoint_signature != ''`,
];

/**
 * (tenant_id, id) of every event, sorted for point lookups: the idempotency
 * check before each insert reads only this. Filled by a materialized view in
 * the same INSERT as the event itself, and kept for the dedup window.
 */
function eventIdsTable(config: StoreConfig): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS event_ids
(
  tenant_id LowCardinality(String),
  id String,
  received_at DateTime CODEC(Delta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (tenant_id, id)
TTL received_at + INTERVAL ${config.dedupWindowDays} DAY
SETTINGS ttl_only_drop_parts = 1, fsync_after_insert = ${config.fsync ? 1 : 0}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS
SELECT tenant_id, id, toDateTime(received_at) AS received_at FROM events`,
  ];
}

/**
 * Idempotent: safe on every start. Settings that config may change between
 * starts (fsync, dedup window) are re-applied to existing tables.
 */
export async function migrate(client: ClickHouseClient, config: StoreConfig): Promise<void> {
  const statements = [
    eventsTable(config),
    ...CHAIN_COLUMNS.map((column) => `ALTER TABLE events ADD COLUMN IF NOT EXISTS ${column}`),
    ...eventIdsTable(config),
    ...checkpointsTable(config),
    `ALTER TABLE events MODIFY SETTING fsync_after_insert = ${config.fsync ? 1 : 0}, fsync_part_directory = ${config.fsync ? 1 : 0}`,
    `ALTER TABLE event_ids MODIFY TTL received_at + INTERVAL ${config.dedupWindowDays} DAY`,
  ];
  for (const query of statements) await client.command({ query });
}

/** The tables the service needs, for a service that may not create them (a writer-only user). */
export const TABLES = ["events", "event_ids", "checkpoints"] as const;

/** Fails, naming what is missing, unless every table is there and readable. */
export async function checkSchema(client: ClickHouseClient): Promise<void> {
  for (const table of TABLES) {
    try {
      await client.query({ query: `SELECT 1 FROM ${table} LIMIT 0`, format: "JSONEachRow" });
    } catch (err) {
      throw new Error(`table ${table} is missing or not readable; run \`auditlog migrate\` as a ClickHouse admin first`, { cause: err });
    }
  }
}
