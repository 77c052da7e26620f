import type { ClickHouseClient } from "@clickhouse/client";
import type { InsertSettings, RowInserter } from "./client.ts";
import { dateTime64, INSERT_COLUMNS, type EncodedRecord } from "./event-row.ts";
import { mayBeServerMade } from "../ingest/uuid7.ts";
import { TEXT_INDEX_NAMES } from "./schema.ts";

/**
 * Every INSERT into `events` leaves the text indexes to the merges, which
 * build a merged part's indexes from its rows anyway: building them for
 * each inserted part as well cost 29% of the engine's CPU for a block of
 * 10,000 events and 5–10 ms of a small INSERT's 50 (README, "Text indexes
 * are built by merges"). A part no merge has taken yet is searched by
 * reading its columns, with the same answer (the indexes are defined on the
 * very expressions searches evaluate).
 */
export const EVENT_INSERT_SETTINGS: InsertSettings = { exclude_materialize_skip_indexes_on_insert: TEXT_INDEX_NAMES.join(", ") };

/**
 * The rows of events waiting for their commit, as the body of one INSERT
 * (JSONCompactEachRow lines), made before the INSERT is awaited:
 * each row's head copied from the event's arrival encoding (UTF-8 already),
 * then its tail (`tailOf`: the columns the commit decides) and a newline.
 */
export function encodedRowsBody(records: EncodedRecord[], tailOf: (r: EncodedRecord) => string): Buffer {
  const tails = records.map(tailOf);
  let size = records.length;
  records.forEach(({ encoded }, i) => (size += encoded.utf8.length - encoded.rowHeadAt + Buffer.byteLength(tails[i])));
  const body = Buffer.allocUnsafe(size);
  let at = 0;
  records.forEach(({ encoded }, i) => {
    at += encoded.utf8.copy(body, at, encoded.rowHeadAt);
    at += body.write(tails[i], at);
    body[at++] = 0x0a;
  });
  return body;
}

/** One block, one INSERT: the unit of group commit. */
export function insertEventRows(insertRows: RowInserter, body: Buffer): Promise<void> {
  return insertRows("events", INSERT_COLUMNS, body, EVENT_INSERT_SETTINGS);
}

/**
 * Which of these (tenant, id) pairs are already stored, within the dedup
 * window. A client's own ids are found in `event_ids`, the small sorted
 * table a view fills with them. `event_ids` leaves out the ids the server
 * makes (writing them cost about a tenth of a small INSERT, for ids nobody
 * can retry), so an id that may be one of those (a client sending back an
 * id it was given, or a client's id that carries the same mark) is looked
 * for in `events` itself, over the dedup window: the window prunes
 * partitions, and the id bloom filter granules. (A narrower bound from the
 * id's own timestamp would hold for the server's ids, not for a client's
 * marked id with any timestamp it likes.)
 */
export async function findStoredIds(
  client: ClickHouseClient,
  keys: { tenantId: string; id: string }[],
  window: { nowMs: number; dedupWindowDays: number },
): Promise<Set<string>> {
  const found = new Set<string>();
  const clientMade: typeof keys = [];
  const serverMade: typeof keys = [];
  for (const key of keys) (mayBeServerMade(key.id) ? serverMade : clientMade).push(key);
  if (clientMade.length > 0) {
    await collectStored(client, found, "SELECT tenant_id, id FROM event_ids WHERE tenant_id IN {tenants:Array(String)} AND id IN {ids:Array(String)}", clientMade);
  }
  if (serverMade.length > 0) {
    await collectStored(
      client,
      found,
      "SELECT tenant_id, id FROM events WHERE tenant_id IN {tenants:Array(String)} AND id IN {ids:Array(String)} AND received_at >= {since:DateTime64(6, 'UTC')}",
      serverMade,
      { since: dateTime64((window.nowMs - window.dedupWindowDays * DAY_MS) * 1000) },
    );
  }
  return found;
}

const DAY_MS = 86_400_000;

async function collectStored(
  client: ClickHouseClient,
  found: Set<string>,
  query: string,
  keys: { tenantId: string; id: string }[],
  params: Record<string, unknown> = {},
): Promise<void> {
  const tenants = [...new Set(keys.map((k) => k.tenantId))];
  const ids = [...new Set(keys.map((k) => k.id))];
  const result = await client.query({ query, query_params: { tenants, ids, ...params }, format: "JSONCompactEachRow" });
  for (const [tenant, id] of await result.json<[string, string]>()) found.add(idKey(tenant, id));
}

export const idKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;
