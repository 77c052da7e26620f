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
  INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1,
  INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY (toYYYYMMDD(received_at), retention_days)
ORDER BY (tenant_id, time, id)
TTL toDateTime(received_at) + toIntervalDay(retention_days)
SETTINGS ttl_only_drop_parts = 1, fsync_after_insert = ${config.fsync ? 1 : 0}, fsync_part_directory = ${config.fsync ? 1 : 0}`;
}

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
    ...eventIdsTable(config),
    `ALTER TABLE events MODIFY SETTING fsync_after_insert = ${config.fsync ? 1 : 0}, fsync_part_directory = ${config.fsync ? 1 : 0}`,
    `ALTER TABLE event_ids MODIFY TTL received_at + INTERVAL ${config.dedupWindowDays} DAY`,
  ];
  for (const query of statements) await client.command({ query });
}
