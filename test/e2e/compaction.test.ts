import { Session } from "chdb";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendAll, searchAllJson } from "../helpers/bulk.ts";
import { connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { scrapeMetrics } from "../helpers/metrics.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { runStoreSql } from "../helpers/store-sql.ts";

/**
 * A week of events that has stopped receiving (AUDITLOG_COMPACT_IDLE_PARTITION_SECONDS,
 * 2 days by default, 1 s here) is merged into one part by the engine, which
 * builds the text indexes the inserts left out; /metrics shows parts and
 * partitions per table.
 */
let server: TestServer;
const ENV = { AUDITLOG_COMPACT_IDLE_PARTITION_SECONDS: "1" };
const DAY_US = 86_400_000_000;
const OLD_WEEK_US = Date.now() * 1000 - 21 * DAY_US;

beforeAll(async () => {
  server = await startServer({ env: ENV });
  const clients = connectClients(server.baseUrl, "connect-binary");
  await appendAll(clients, await server.token("compact", ["writer"]), [sampleEvent(0, { id: "today", source: "compaction", message: "merged today" })]);
  await server.stop();
  // Three parts of a week three weeks ago, as three batches would leave them.
  const at = `fromUnixTimestamp64Micro(${OLD_WEEK_US}, 'UTC')`;
  runStoreSql(
    server.dataDir,
    ["old-0", "old-1", "old-2"].map(
      (id) => `INSERT INTO events (tenant_id, id, time, type, action, source, message, received_at, retention_days) VALUES ('compact', '${id}', ${at}, 'planted', 'VIEW', 'compaction', 'planted ${id} merged', ${at}, 90)`,
    ),
  );
  server = await startServer({ dataDir: server.dataDir, env: ENV });
});
afterAll(async () => {
  await server.stop();
  removeDataDir(server.dataDir);
});

describe("compaction of quiet weeks", () => {
  it("merges each quiet partition into one part, shown in /metrics, with its text indexes built and every event found", async () => {
    const parts = async () => {
      const metrics = await scrapeMetrics(server.baseUrl);
      return {
        parts: metrics.value("auditlog_store_parts", { table: "events", kind: "parts" }),
        partitions: metrics.value("auditlog_store_parts", { table: "events", kind: "partitions" }),
      };
    };
    // Two weeks: this one and the planted one (the server's own read audits land in this week too).
    expect((await parts()).partitions).toBe(2);
    // The engine merges on its own schedule; wait for it, up to a minute.
    let seen = await parts();
    for (const deadline = Date.now() + 60_000; seen.parts !== seen.partitions && Date.now() < deadline; seen = await parts()) {
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(seen).toEqual({ parts: 2, partitions: 2 });

    const clients = connectClients(server.baseUrl, "connect-binary");
    const found = await searchAllJson(clients, await server.token("compact", ["auditor"]), { sources: ["compaction"], query: "merged" });
    expect(found.map((e) => e.id).sort()).toEqual(["old-0", "old-1", "old-2", "today"]);

    await server.stop();
    const session = new Session(join(server.dataDir, "chdb"));
    try {
      const week = session.query("SELECT path, level FROM system.parts WHERE active AND table = 'events' AND max_time < now() - INTERVAL 14 DAY", "JSONEachRow").trim().split("\n").map((l) => JSON.parse(l) as { path: string; level: number });
      expect(week).toHaveLength(1);
      expect(week[0].level).toBeGreaterThan(0);
      expect(readdirSync(week[0].path).filter((f) => /^skp_idx_idx_(message|attribute)_words\.idx$/.test(f)).sort()).toEqual([
        "skp_idx_idx_attribute_words.idx",
        "skp_idx_idx_message_words.idx",
      ]);
    } finally {
      session.close();
    }
    server = await startServer({ dataDir: server.dataDir, env: ENV });
  });
});
