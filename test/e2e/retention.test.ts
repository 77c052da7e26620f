import { afterAll, describe, expect, it } from "vitest";
import { appendAll } from "../helpers/bulk.ts";
import { connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, tempDataDir } from "../helpers/server.ts";
import { readStoreSql, runStoreSql } from "../helpers/store-sql.ts";

/**
 * A TTL is a ClickHouse `DateTime`, which ends in 2106 and wraps past it: a
 * 100-year retention counted that way put the events' end in 1990, and the
 * next merge dropped them. The service holds the end at 2106-01-01 instead,
 * and an older store gets that TTL on its next start.
 */
describe("retention longer than ClickHouse's DateTime reaches", () => {
  const dataDir = tempDataDir();
  afterAll(() => removeDataDir(dataDir));
  const DAY_US = 86_400_000_000;

  it("keeps a 100-year tenant's events through a TTL merge, still drops what has expired, and gives an older store the TTL that does not wrap", async () => {
    const env = { AUDITLOG_RETENTION_DAYS: "36500" };
    await (await startServer({ dataDir, env })).stop();
    // The TTL of the releases before this one.
    runStoreSql(dataDir, ["ALTER TABLE events MODIFY TTL toDateTime(received_at) + toIntervalDay(retention_days)"]);

    const server = await startServer({ dataDir, env });
    const clients = connectClients(server.baseUrl, "connect-binary");
    await appendAll(clients, await server.token("century", ["writer"]), [0, 1, 2].map((i) => sampleEvent(i, { id: `kept-${i}` })));
    await server.stop();
    const [table] = readStoreSql<{ create_table_query: string }>(dataDir, "SELECT create_table_query FROM system.tables WHERE name = 'events'");
    expect(table.create_table_query).toContain("least(received_at + toIntervalDay(retention_days), toDateTime64('2106-01-01 00:00:00', 6, 'UTC'))");
    const [wrapping] = readStoreSql<{ end: string }>(dataDir, "SELECT toString(max(toDateTime(received_at) + toIntervalDay(retention_days))) AS end FROM events WHERE tenant_id = 'century'");
    expect(wrapping.end < "2026", `the old expression wraps to ${wrapping.end} (what this test guards against)`).toBe(true);

    // An event whose 1-day retention ended 9 days ago goes at the same merge.
    const tenDaysAgo = `fromUnixTimestamp64Micro(${Date.now() * 1000 - 10 * DAY_US}, 'UTC')`;
    runStoreSql(dataDir, [
      `INSERT INTO events (tenant_id, id, time, type, action, source, message, received_at, retention_days) VALUES ('brief', 'expired', ${tenDaysAgo}, 'planted', 'VIEW', 'retention', 'gone', ${tenDaysAgo}, 1)`,
      "OPTIMIZE TABLE events FINAL",
    ]);
    const rows = readStoreSql<{ tenant_id: string; n: number }>(dataDir, "SELECT tenant_id, count() AS n FROM events WHERE tenant_id IN ('century', 'brief') GROUP BY tenant_id ORDER BY tenant_id");
    expect(rows).toEqual([{ tenant_id: "century", n: 3 }]);
  });
});
