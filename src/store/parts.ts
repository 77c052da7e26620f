import type { ClickHouseClient } from "@clickhouse/client";

/** Active parts and partitions of one table. */
export interface TableParts {
  table: string;
  parts: number;
  partitions: number;
}

/**
 * Active parts and partitions of each of the service's tables, for
 * /metrics: every part is opened by the reads that cannot skip it, so parts
 * far above partitions mean merges are behind (or a week is not compacted).
 */
export async function readTableParts(client: ClickHouseClient): Promise<TableParts[]> {
  const result = await client.query({
    query: `SELECT table, count() AS parts, uniqExact(partition_id) AS partitions
      FROM system.parts WHERE active AND database = currentDatabase() GROUP BY table ORDER BY table`,
    format: "JSONEachRow",
  });
  const rows = await result.json<{ table: string; parts: string; partitions: string }>();
  return rows.map((r) => ({ table: r.table, parts: Number(r.parts), partitions: Number(r.partitions) }));
}
