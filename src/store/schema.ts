import type { ClickHouseClient } from "@clickhouse/client";
import { ConfigError, type StoreConfig } from "../config.ts";
import { ENCRYPTED_POLICY } from "./encryption.ts";
import { SERVER_MADE_ID_REGEX } from "../ingest/uuid7.ts";

/** SQL: the event's id is not one the server may have made (a constant pattern, no user input). */
export const CLIENT_MADE_ID = `NOT match(id, '${SERVER_MADE_ID_REGEX}')`;

/**
 * The events table. Choices, each for a reason:
 * - ORDER BY (tenant_id, time, id): every read is scoped to one tenant and
 *   most ask for a time range newest-first; `id` makes the order total so
 *   keyset paging never skips or repeats.
 * - received_at is server-set at commit; retention (TTL) and partitions hang
 *   off it and the per-row retention_days, never off the client's `time`, so a
 *   back- or forward-dated event cannot change how long it is kept. With
 *   retention_days in the partition key ttl_only_drop_parts drops whole parts
 *   instead of rewriting them, once their newest event has expired.
 * - Partitions are weeks (Monday to Sunday, UTC) of received_at, not days: a
 *   search without a time bound opens every part the tenant has, and on a
 *   month of 10M events 31 daily parts made such searches 1.1-1.8x slower
 *   than 5 weekly ones (README, "Partitions by week"). The price: an event is
 *   dropped up to 7 days after its retention ends, not up to 1.
 * - severity and outcome are Enum8 so `severity >= WARNING` is a number compare.
 * - Bloom filters on the ids people look up one at a time (id, request_id).
 * - Text indexes (inverted, lower-cased words) on `message` and on the
 *   attribute values serve full-text terms (src/query/text-term.ts).
 * - fsync_after_insert: an acknowledged insert is on disk, not only in the
 *   page cache (AUDITLOG_FSYNC=false trades that for throughput).
 * - The hash chain (chain_id, seq, prev_hash, hash) and, on the event that
 *   ends a batch's stretch of a chain, the signed checkpoint: stored in the
 *   same INSERT as the events, so a checkpoint never exists without its events.
 */
/** The storage policy new tables are created with (an encrypted disk, say), or the default. */
export function storagePolicy(config: StoreConfig): string {
  if (config.kind === "chdb" && config.encryptionKey) return ENCRYPTED_POLICY;
  return config.storagePolicy ?? "default";
}

/** Appended to a table's SETTINGS; operator config, checked to be a bare name (src/config.ts). */
const policy = (config: StoreConfig) => (storagePolicy(config) === "default" ? "" : `, storage_policy = '${storagePolicy(config)}'`);

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
  INDEX idx_request_id request_id TYPE bloom_filter(0.01) GRANULARITY 1,
${TEXT_INDEXES.map((i) => `  INDEX ${i.name} ${i.definition}`).join(",\n")}
)
ENGINE = MergeTree
PARTITION BY (toMonday(received_at), retention_days)
ORDER BY (tenant_id, time, id)
TTL ${EVENTS_TTL}
SETTINGS ttl_only_drop_parts = 1, ${eventsSettings(config)}${policy(config)}`;
}

/**
 * When an event goes. A TTL is a `DateTime`, which ends in 2106 and wraps
 * past it: `toDateTime(received_at) + toIntervalDay(36500)` received in 2026
 * is a date in 1990, and the first merge dropped a 100-year tenant's events.
 * So the end is counted in `DateTime64` (to 2299) and held at 2106-01-01.
 */
const EVENTS_TTL = "toDateTime(least(received_at + toIntervalDay(retention_days), toDateTime64('2106-01-01 00:00:00', 6, 'UTC')))";
/** The hourly rollup's rows go a week after their events (counted in `Date32`, as a `Date` wraps in 2149, and held a week after the events' end). */
const HOURLY_TTL = "toDate(least(toDate32(received_week) + toIntervalDay(retention_days + 7), toDate32('2106-01-08')))";

/**
 * The events table's settings that config may change between starts. A
 * partition that has received nothing for `compactIdlePartitionSeconds` (a
 * week that has ended) is merged into one part: the merge selector alone
 * left a week of 2.3M events in 5 parts, each opened by every search that
 * cannot skip the week, and a last small part of a week without the text
 * indexes the inserts leave to merges (README, "Quiet weeks become one part").
 */
const eventsSettings = (config: StoreConfig) =>
  `fsync_after_insert = ${config.fsync ? 1 : 0}, fsync_part_directory = ${config.fsync ? 1 : 0}, ` +
  `min_age_to_force_merge_seconds = ${config.compactIdlePartitionSeconds}, min_age_to_force_merge_on_partition_only = 1`;

/**
 * Full-text indexes: inverted indexes of the lower-cased words (splitByNonAlpha:
 * runs of ASCII letters and digits and of non-ASCII characters) of `message`
 * and of the attribute values. Defined on the lower-cased expressions, not
 * with a `preprocessor`, so that a search means the same whether the engine
 * answers it from the index or from the column (a part whose index is still
 * being built). Chosen by measurement (README, "Full-text search").
 */
const TEXT_INDEXES = [
  { name: "idx_message_words", definition: "lowerUTF8(message) TYPE text(tokenizer = splitByNonAlpha)" },
  { name: "idx_attribute_words", definition: "arrayMap(v -> lowerUTF8(v), mapValues(attributes)) TYPE text(tokenizer = splitByNonAlpha)" },
];

/** The text indexes' names: inserts leave them to merges (src/store/event-writes.ts). */
export const TEXT_INDEX_NAMES = TEXT_INDEXES.map((i) => i.name);

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
SETTINGS fsync_after_insert = ${config.fsync ? 1 : 0}${policy(config)}`,
  `CREATE MATERIALIZED VIEW IF NOT EXISTS checkpoints_mv TO checkpoints AS
SELECT tenant_id, chain_id, seq, hash AS head_hash, received_at AS time, checkpoint_signature AS signature, checkpoint_key_id AS key_id
FROM events WHERE checkpoint_signature != ''`,
];

/**
 * (tenant_id, id) of every event whose id a client chose, sorted for point
 * lookups: the idempotency check before each insert reads this. Filled by a
 * materialized view in the same INSERT as the event itself, and kept for
 * the dedup window. Ids the server made are left out: nobody retries them,
 * and writing them cost about a tenth of a 1,000-event INSERT (README,
 * "Idempotency"); the rare client that sends one back is looked up in
 * `events` instead (src/store/event-writes.ts).
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
SETTINGS ttl_only_drop_parts = 1, fsync_after_insert = ${config.fsync ? 1 : 0}${policy(config)}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS ${EVENT_IDS_SELECT}`,
  ];
}

const EVENT_IDS_SELECT = `SELECT tenant_id, id, toDateTime(received_at) AS received_at FROM events WHERE ${CLIENT_MADE_ID}`;

/**
 * The first release's view wrote every id; it is changed in place (one
 * `ALTER`, so no INSERT of another instance falls between two views). Ids
 * it wrote stay until the window ends, and are found either way. ClickHouse
 * servers before 23.12 allow `MODIFY QUERY` only with the experimental
 * setting; later ones ignore it.
 */
async function leaveServerMadeIdsOutOfEventIds(client: ClickHouseClient, config: StoreConfig): Promise<void> {
  const result = await client.query({
    query: "SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = 'event_ids_mv'",
    format: "JSONEachRow",
  });
  const [view] = await result.json<{ as_select: string }>();
  if (view && !view.as_select.includes(SERVER_MADE_ID_REGEX)) {
    await client.command({
      query: `ALTER TABLE event_ids_mv MODIFY QUERY ${EVENT_IDS_SELECT}`,
      // Per request over HTTP; the embedded engine (ClickHouse 26) has no need of it, and a setting there would outlive the call.
      clickhouse_settings: config.kind === "server" ? { allow_experimental_alter_materialized_view_structure: 1 } : undefined,
    });
  }
}

/**
 * Tenants and their policies (src/tenants). Every change is a new row; the
 * newest by update_time wins. No TTL: a tenant outlives its events.
 */
const tenantsTable = (config: StoreConfig) => `CREATE TABLE IF NOT EXISTS tenants
(
  tenant_id String,
  display_name String,
  retention_days UInt16,
  ingest_events_per_second UInt32,
  requests_per_second UInt32,
  principal_ingest_events_per_second UInt32,
  principal_requests_per_second UInt32,
  redaction String,
  create_time DateTime64(6, 'UTC'),
  update_time DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(update_time)
ORDER BY tenant_id
SETTINGS fsync_after_insert = ${config.fsync ? 1 : 0}${policy(config)}`;

/**
 * The newest commit time each catalog row has counted: after a crash, a
 * batch the catalog lacks is one committed after its marker (src/store/repair.ts).
 * Added after the first release.
 */
const CATALOG_MARKER = "last_received_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))";

const SEVERITY_ENUM = "Enum8('UNSPECIFIED' = 0, 'INFO' = 1, 'WARNING' = 2, 'ERROR' = 3, 'CRITICAL' = 4)";
const OUTCOME_ENUM = "Enum8('UNSPECIFIED' = 0, 'SUCCESS' = 1, 'FAILURE' = 2)";

/**
 * Rollups filled by materialized views in the same INSERT as the events, so
 * dashboards never scan events: counts per tenant, hour (of `time`), type,
 * action, severity, outcome and source; and per tenant and type, the event
 * type catalog (count, first and last seen, attribute keys).
 *
 * The hourly counts live as long as the events they count: each row also
 * carries the week of receipt and the retention its events were stored with,
 * and goes when that week's events do (a week's part of `events` is dropped
 * once its newest event has expired, so by the week's end plus the
 * retention). A lifetime from the hour of `time` and the service's default
 * retention (the first release's) counted a 30-day tenant's events for 90
 * days, forgot a 365-day tenant's after 90, and dropped back-dated events at
 * once, while the events were still there.
 */
const ROLLUPS = [
  {
    table: "events_hourly",
    create: (config: StoreConfig) => `CREATE TABLE IF NOT EXISTS events_hourly
(
  tenant_id LowCardinality(String),
  hour DateTime('UTC'),
  type LowCardinality(String),
  action LowCardinality(String),
  severity ${SEVERITY_ENUM},
  outcome ${OUTCOME_ENUM},
  source LowCardinality(String),
  received_week Date,
  retention_days UInt16,
  events UInt64
)
ENGINE = SummingMergeTree(events)
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, type, action, severity, outcome, source, received_week, retention_days)
TTL ${HOURLY_TTL}
SETTINGS index_granularity = 8192${policy(config)}`,
    select: `SELECT tenant_id, toStartOfHour(time) AS hour, type, action, severity, outcome, source,
  toMonday(received_at) AS received_week, retention_days, count() AS events
FROM events GROUP BY tenant_id, hour, type, action, severity, outcome, source, received_week, retention_days`,
  },
  {
    table: "event_types",
    create: (config: StoreConfig) => `CREATE TABLE IF NOT EXISTS event_types
(
  tenant_id LowCardinality(String),
  type LowCardinality(String),
  events SimpleAggregateFunction(sum, UInt64),
  first_seen SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
  last_seen SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
  attribute_keys SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
  ${CATALOG_MARKER}
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, type)
SETTINGS index_granularity = 8192${policy(config)}`,
    select: `SELECT tenant_id, type, count() AS events, min(time) AS first_seen, max(time) AS last_seen,
  groupUniqArrayArray(arrayMap(k -> toString(k), mapKeys(attributes))) AS attribute_keys,
  max(received_at) AS last_received_at
FROM events GROUP BY tenant_id, type`,
  },
];

/**
 * A rollup added to an existing store is back-filled from the events stored
 * before its view existed (up to the view's creation, by received_at).
 */
async function createRollups(client: ClickHouseClient, config: StoreConfig, steps: SchemaSteps): Promise<void> {
  for (const rollup of ROLLUPS) {
    const step = ROLLUP_STEP(rollup.table);
    if ((await tableExists(client, rollup.table)) && (!steps.redo || (await steps.done(step)))) continue;
    // Not filled to its end (or not there): made again from the start, its view with it.
    await client.command({ query: `DROP VIEW IF EXISTS ${rollup.table}_mv` });
    await client.command({ query: `DROP TABLE IF EXISTS ${rollup.table}` });
    await client.command({ query: rollup.create(config) });
    const cutoff = await client.query({ query: "SELECT toUnixTimestamp64Micro(now64(6)) AS us", format: "JSONEachRow" });
    const [{ us }] = await cutoff.json<{ us: string }>();
    await client.command({ query: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${rollup.table}_mv TO ${rollup.table} AS ${rollup.select}` });
    await client.command({
      query: `INSERT INTO ${rollup.table} ${rollup.select.replace("FROM events", "FROM events WHERE received_at < fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC')")}`,
      query_params: { cutoff: us },
    });
    await steps.markDone(step);
  }
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
    tenantsTable(config),
    `ALTER TABLE events MODIFY SETTING ${eventsSettings(config)}`,
    // Stores made before the TTL was held short of 2106 (an unchanged TTL starts no mutation).
    `ALTER TABLE events MODIFY TTL ${EVENTS_TTL}`,
    `ALTER TABLE event_ids MODIFY TTL received_at + INTERVAL ${config.dedupWindowDays} DAY`,
  ];
  for (const query of statements) await client.command({ query });
  const steps = await schemaSteps(client, config);
  await addTextIndexes(client);
  await leaveServerMadeIdsOutOfEventIds(client, config);
  await replaceHourlyRollupWithoutReceipt(client);
  await createRollups(client, config, steps);
  await client.command({ query: `ALTER TABLE events_hourly MODIFY TTL ${HOURLY_TTL}` });
  await addCatalogMarker(client, steps);
  await checkStoragePolicy(client, config);
}

/** Migrations of several statements, each marked done once its last statement has run. */
interface SchemaSteps {
  /** Whether a step left unmarked is made again from its start (the embedded store only). */
  redo: boolean;
  done(step: string): Promise<boolean>;
  markDone(step: string): Promise<void>;
}

const ROLLUP_STEP = (table: string) => `rollup ${table} filled`;
const CATALOG_MARKER_STEP = "event_types marker filled";
/** Written once the marks of a store from before them are in place. */
const BASELINE_STEP = "marks of earlier migrations";

/**
 * A migration of several statements cut by a kill (a rollout, `docker stop`
 * during a long back-fill) must not pass for done because its first statement
 * left a table or column behind: each is marked done in `schema_steps` after
 * its last statement, and on the embedded store one without its mark is made
 * again (`redo`). A store from before the marks gets them for what it already
 * has (its migrations ran to their end under the code that made them, or
 * would have been seen as done), and then a baseline mark, so a kill before
 * that only repeats the inference. On a ClickHouse server several instances
 * may migrate at once (AUDITLOG_MIGRATE), and one must not drop what another
 * is filling: there a step whose table exists is taken as done, as before
 * (run `auditlog migrate` once, as docker-compose.yml does).
 */
async function schemaSteps(client: ClickHouseClient, config: StoreConfig): Promise<SchemaSteps> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_steps (step String, done_at DateTime64(6, 'UTC') DEFAULT now64(6)) ENGINE = MergeTree ORDER BY step
SETTINGS fsync_after_insert = ${config.fsync ? 1 : 0}${policy(config)}`,
  });
  const steps: SchemaSteps = {
    redo: config.kind === "chdb",
    async done(step) {
      const result = await client.query({ query: "SELECT count() AS n FROM schema_steps WHERE step = {step:String}", query_params: { step }, format: "JSONEachRow" });
      const [{ n }] = await result.json<{ n: string | number }>();
      return Number(n) > 0;
    },
    async markDone(step) {
      await client.command({ query: "INSERT INTO schema_steps (step) VALUES ({step:String})", query_params: { step } });
    },
  };
  if (!(await steps.done(BASELINE_STEP))) {
    if ((await columnsOf(client, "events_hourly")).has("received_week")) await steps.markDone(ROLLUP_STEP("events_hourly"));
    if (await tableExists(client, "event_types")) await steps.markDone(ROLLUP_STEP("event_types"));
    if ((await columnsOf(client, "event_types")).has("last_received_at")) await steps.markDone(CATALOG_MARKER_STEP);
    await steps.markDone(BASELINE_STEP);
  }
  return steps;
}

async function tableExists(client: ClickHouseClient, table: string): Promise<boolean> {
  const result = await client.query({ query: `EXISTS TABLE ${table}`, format: "JSONEachRow" });
  const [{ result: exists }] = await result.json<{ result: number }>();
  return exists === 1;
}

/** The columns a table of ours has now (none: it does not exist yet); for upgrades of older stores. */
async function columnsOf(client: ClickHouseClient, table: string): Promise<Set<string>> {
  const result = await client.query({
    query: "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}",
    query_params: { table },
    format: "JSONEachRow",
  });
  return new Set((await result.json<{ name: string }>()).map((c) => c.name));
}

/**
 * The hourly rollup of the first release (no week of receipt, no retention:
 * see ROLLUPS) is dropped with its view, to be made again and back-filled
 * from the events stored (`createRollups`): counting them again gives what
 * the new rows would have held, and forgets counts of events already gone.
 */
async function replaceHourlyRollupWithoutReceipt(client: ClickHouseClient): Promise<void> {
  const columns = await columnsOf(client, "events_hourly");
  if (columns.size === 0 || columns.has("received_week")) return;
  await client.command({ query: "DROP VIEW IF EXISTS events_hourly_mv" });
  await client.command({ query: "DROP TABLE events_hourly" });
}

/**
 * A catalog made before its marker column gets it, its view is made again to
 * fill it, and every row it has gets a marker of now: what it counted so far
 * is taken as complete (a zero-count row changes no sum, minimum or maximum).
 */
async function addCatalogMarker(client: ClickHouseClient, steps: SchemaSteps): Promise<void> {
  if (await steps.done(CATALOG_MARKER_STEP)) return;
  if (!steps.redo && (await columnsOf(client, "event_types")).has("last_received_at")) return;
  const catalog = ROLLUPS.find((r) => r.table === "event_types")!;
  // Each statement below may run again after a kill: zero-count rows change no count.
  await client.command({ query: `ALTER TABLE event_types ADD COLUMN IF NOT EXISTS ${CATALOG_MARKER}` });
  await client.command({ query: "DROP VIEW IF EXISTS event_types_mv" });
  await client.command({ query: `CREATE MATERIALIZED VIEW event_types_mv TO event_types AS ${catalog.select}` });
  await client.command({
    query: `INSERT INTO event_types (tenant_id, type, events, first_seen, last_seen, attribute_keys, last_received_at)
      SELECT tenant_id, type, 0, toDateTime64('2299-12-31 23:59:59', 6, 'UTC'), toDateTime64(0, 6, 'UTC'), [], now64(6)
      FROM event_types GROUP BY tenant_id, type`,
  });
  await steps.markDone(CATALOG_MARKER_STEP);
}

/**
 * A table keeps the policy it was created with: a store created plain and
 * then configured for encryption (or the reverse) is refused, not half-encrypted.
 */
async function checkStoragePolicy(client: ClickHouseClient, config: StoreConfig): Promise<void> {
  const result = await client.query({
    query: "SELECT name, storage_policy FROM system.tables WHERE database = currentDatabase() AND name IN {tables:Array(String)}",
    query_params: { tables: [...TABLES] },
    format: "JSONEachRow",
  });
  const wanted = storagePolicy(config);
  const off = (await result.json<{ name: string; storage_policy: string }>()).filter((t) => t.storage_policy !== wanted);
  if (off.length > 0) {
    const list = off.map((t) => `${t.name} (${t.storage_policy})`).join(", ");
    throw new ConfigError(`tables ${list} are not on the storage policy "${wanted}" this service is configured for; a store's policy is chosen when it is created (README, "Encryption at rest")`);
  }
}

/**
 * Text indexes added to a table created before them: added, then built for the
 * parts already there by a background mutation. Until it is done those parts
 * are scanned instead, with the same results.
 */
async function addTextIndexes(client: ClickHouseClient): Promise<void> {
  const result = await client.query({
    query: "SELECT name FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = 'events'",
    format: "JSONEachRow",
  });
  const present = new Set((await result.json<{ name: string }>()).map((r) => r.name));
  for (const index of TEXT_INDEXES) {
    if (present.has(index.name)) continue;
    await client.command({ query: `ALTER TABLE events ADD INDEX IF NOT EXISTS ${index.name} ${index.definition}` });
    await client.command({ query: `ALTER TABLE events MATERIALIZE INDEX ${index.name}` });
  }
}

/** The tables the service needs, for a service that may not create them (a writer-only user). */
export const TABLES = ["events", "event_ids", "checkpoints", "events_hourly", "event_types", "tenants"] as const;

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
