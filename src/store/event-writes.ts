import type { ClickHouseClient } from "@clickhouse/client";
import type { InsertSettings, RowInserter } from "./client.ts";
import { INSERT_COLUMNS } from "./event-row.ts";
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
 * A block's rows as the body of one INSERT: JSONCompactEachRow lines (rows
 * given as lines, or as values to make them of). Made before the INSERT is
 * awaited, so the rows' strings are garbage by then instead of being held,
 * and copied by scavenges, for as long as the engine takes.
 */
export function eventRowsBody(rows: (string | unknown[])[]): Buffer {
  let body = "";
  for (const row of rows) body += `${typeof row === "string" ? row : JSON.stringify(row)}\n`;
  return Buffer.from(body);
}

/** One block, one INSERT: the unit of group commit. */
export function insertEventRows(insertRows: RowInserter, body: Buffer): Promise<void> {
  return insertRows("events", INSERT_COLUMNS, body, EVENT_INSERT_SETTINGS);
}

/**
 * Which of these (tenant, id) pairs are already stored, within the dedup
 * window. Reads only the small sorted `event_ids` table.
 */
export async function findStoredIds(
  client: ClickHouseClient,
  keys: { tenantId: string; id: string }[],
): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const tenants = [...new Set(keys.map((k) => k.tenantId))];
  const ids = [...new Set(keys.map((k) => k.id))];
  const result = await client.query({
    query: "SELECT tenant_id, id FROM event_ids WHERE tenant_id IN {tenants:Array(String)} AND id IN {ids:Array(String)}",
    query_params: { tenants, ids },
    format: "JSONCompactEachRow",
  });
  const rows = await result.json<[string, string]>();
  return new Set(rows.map(([tenant, id]) => idKey(tenant, id)));
}

export const idKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;
