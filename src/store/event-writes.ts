import type { ClickHouseClient } from "@clickhouse/client";
import type { RowInserter } from "./client.ts";
import { INSERT_COLUMNS } from "./event-row.ts";

/** One block, one INSERT: the unit of group commit. Rows are JSONCompactEachRow lines (or values to make them of). */
export async function insertEventRows(insertRows: RowInserter, rows: (string | unknown[])[]): Promise<void> {
  let body = "";
  for (const row of rows) body += `${typeof row === "string" ? row : JSON.stringify(row)}\n`;
  await insertRows("events", INSERT_COLUMNS, Buffer.from(body));
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
