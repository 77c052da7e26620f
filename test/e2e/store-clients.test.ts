import { ClickHouseError, type ClickHouseClient } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { createStoreClients, type StoreClients } from "../../src/store/client.ts";
import { removeDataDir, tempDataDir } from "../helpers/server.ts";

/**
 * chdb-node runs the parameterized queries of a process one at a time; the
 * service runs its queries as engine streams on sessions of their own
 * (AUDITLOG_READ_CONNECTIONS for reads, one for the writer), so a slow read
 * holds neither the other reads nor the ingest path's lookups.
 */
const SLOW = "SELECT sleep(1) AS slept, {tag:String} AS tag";
const QUICK = "SELECT {tag:String} AS tag";

describe("queries on the embedded engine", () => {
  let dataDir: string;
  let pooled: StoreClients;
  let single: StoreClients;

  beforeAll(async () => {
    dataDir = tempDataDir();
    const store = (readConnections: string) => loadConfig({ AUDITLOG_DATA_DIR: dataDir, AUDITLOG_READ_CONNECTIONS: readConnections }).store;
    pooled = await createStoreClients(store("2"));
    single = await createStoreClients(store("1"));
  });
  afterAll(async () => {
    await pooled.close();
    await single.close();
    removeDataDir(dataDir);
  });

  const ask = (client: ClickHouseClient, query: string, tag: string) =>
    client.query({ query, query_params: { tag }, format: "JSONEachRow" }).then((r) => r.json<{ tag: string }>());

  /** Starts a slow query, then a quick one, and returns the order in which they answered (with their own parameters). */
  async function answerOrder(slowOn: ClickHouseClient, quickOn: ClickHouseClient): Promise<string[]> {
    const order: string[] = [];
    const note = (rows: { tag: string }[]) => order.push(rows[0].tag);
    await Promise.all([ask(slowOn, SLOW, "slow").then(note), ask(quickOn, QUICK, "quick").then(note)]);
    return order;
  }

  it("answers a quick read while a slow one runs", async () => {
    expect(await answerOrder(pooled.reader, pooled.reader)).toEqual(["quick", "slow"]);
  });

  it("answers the writer's lookup while a slow read runs", async () => {
    expect(await answerOrder(single.reader, single.writer)).toEqual(["quick", "slow"]);
  });

  it("with one read session, queues the quick read behind the slow one (why there are several)", async () => {
    expect(await answerOrder(single.reader, single.reader)).toEqual(["slow", "quick"]);
  });

  it("binds each query's own parameters when many run at once", async () => {
    const tags = Array.from({ length: 40 }, (_, i) => `tag-${i}-${"x".repeat(i)}`);
    const answers = await Promise.all(tags.map((tag, i) => ask(i % 2 ? pooled.reader : pooled.writer, QUICK, tag)));
    expect(answers.map((rows) => rows[0].tag)).toEqual(tags);
  });

  it("fails a bad query with the engine's error, and keeps serving", async () => {
    const failed = pooled.reader.query({ query: "SELECT no_such_column WHERE {tag:String} = ''", query_params: { tag: "" } });
    await expect(failed).rejects.toBeInstanceOf(ClickHouseError);
    await expect(failed).rejects.toMatchObject({ code: "47", type: "UNKNOWN_IDENTIFIER" });
    const answers = await Promise.all([0, 1, 2, 3].map((i) => ask(pooled.reader, QUICK, `after-${i}`)));
    expect(answers.map((rows) => rows[0].tag)).toEqual(["after-0", "after-1", "after-2", "after-3"]);
  });
});
