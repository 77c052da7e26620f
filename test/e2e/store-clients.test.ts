import { ClickHouseError, type ClickHouseClient } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { createStoreClients, type StoreClients } from "../../src/store/client.ts";
import { removeDataDir, tempDataDir } from "../helpers/server.ts";

/**
 * chdb-node runs the parameterized queries of a process one at a time; the
 * service runs its parameterized SELECTs as engine streams on sessions of
 * their own (AUDITLOG_READ_CONNECTIONS for reads, one for the writer), so a
 * slow read holds neither the other reads nor the ingest path's lookups.
 */
const SLOW = "SELECT sleep(1) AS slept, {tag:String} AS tag";
const QUICK = "SELECT {tag:String} AS tag";

describe("queries on the embedded engine", () => {
  let dataDir: string;
  let pooled: StoreClients;
  let single: StoreClients;
  const store = (readConnections: string) => loadConfig({ AUDITLOG_DATA_DIR: dataDir, AUDITLOG_READ_CONNECTIONS: readConnections }).store;

  beforeAll(async () => {
    dataDir = tempDataDir();
    pooled = await createStoreClients(store("2"));
    single = await createStoreClients(store("1"));
  });
  afterAll(async () => {
    await pooled.close();
    await single.close();
    removeDataDir(dataDir);
  });

  const ask = (client: ClickHouseClient, query: string, tag: string, signal?: AbortSignal) =>
    client.query({ query, query_params: { tag }, format: "JSONEachRow", abort_signal: signal }).then((r) => r.json<{ tag: string }>());

  /** Starts a slow query, then quick ones, and returns the order in which they answered (each with its own parameter). */
  async function answerOrder(slowOn: ClickHouseClient, quickOn: ClickHouseClient, quick = 1): Promise<string[]> {
    const order: string[] = [];
    const note = (rows: { tag: string }[]) => order.push(rows[0].tag);
    const slow = ask(slowOn, SLOW, "slow").then(note);
    const quickOnes = Array.from({ length: quick }, (_, i) => ask(quickOn, QUICK, `quick-${i}`).then(note));
    await Promise.all([slow, ...quickOnes]);
    return order;
  }

  it("answers quick reads while a slow one runs, each on the first session that is free", async () => {
    // Two sessions: the slow read holds one; three quick reads take turns on the other.
    expect(await answerOrder(pooled.reader, pooled.reader, 3)).toEqual(["quick-0", "quick-1", "quick-2", "slow"]);
  });

  it("answers the writer's lookup while a slow read runs", async () => {
    expect(await answerOrder(single.reader, single.writer)).toEqual(["quick-0", "slow"]);
  });

  it("with one read session, queues the quick read behind the slow one (why there are several)", async () => {
    expect(await answerOrder(single.reader, single.reader)).toEqual(["slow", "quick-0"]);
  });

  it("binds each query's own parameters while parameterized statements run beside them", async () => {
    await pooled.writer.command({ query: "CREATE TABLE IF NOT EXISTS probe (v String) ENGINE = Memory" });
    const values = Array.from({ length: 20 }, (_, i) => `written-${i}`);
    const tags = Array.from({ length: 40 }, (_, i) => `tag-${i}-${"x".repeat(i)}`);
    const [answers] = await Promise.all([
      Promise.all(tags.map((tag, i) => ask(i % 2 ? pooled.reader : pooled.writer, QUICK, tag))),
      // INSERT … SELECT with a parameter cannot stream: chdb-node runs it on a worker thread meanwhile.
      Promise.all(values.map((v) => pooled.writer.command({ query: "INSERT INTO probe SELECT {v:String}", query_params: { v } }))),
    ]);
    expect(answers.map((rows) => rows[0].tag)).toEqual(tags);
    const stored = await (await pooled.reader.query({ query: "SELECT v FROM probe ORDER BY toUInt32(splitByChar('-', v)[2])", format: "JSONEachRow" })).json<{ v: string }>();
    expect(stored.map((r) => r.v)).toEqual(values);
  });

  it("reads the compact format the idempotency lookup uses", async () => {
    const result = await pooled.writer.query({ query: "SELECT {a:String} AS a, {n:UInt32} AS n", query_params: { a: "tenant", n: 7 }, format: "JSONCompactEachRow" });
    expect(await result.json()).toEqual([["tenant", 7]]);
  });

  it("fails a bad query, or one that fails while its rows are read, with the engine's error, and keeps serving", async () => {
    const unknown = pooled.reader.query({ query: "SELECT no_such_column WHERE {tag:String} = ''", query_params: { tag: "" } });
    await expect(unknown).rejects.toBeInstanceOf(ClickHouseError);
    await expect(unknown).rejects.toMatchObject({ code: "47", type: "UNKNOWN_IDENTIFIER" });
    const late = pooled.reader.query({
      query: "SELECT throwIf(number = 70000, 'failed late') AS x, {tag:String} AS tag FROM numbers(100000)",
      query_params: { tag: "" },
      format: "JSONEachRow",
    });
    await expect(late).rejects.toMatchObject({ code: "395", message: expect.stringContaining("failed late") });
    const answers = await Promise.all([0, 1, 2, 3].map((i) => ask(pooled.reader, QUICK, `after-${i}`)));
    expect(answers.map((rows) => rows[0].tag)).toEqual(["after-0", "after-1", "after-2", "after-3"]);
  });

  it("gives up a query waiting for a session when its caller aborts, without waiting for the session", async () => {
    const order: string[] = [];
    const slow = ask(single.reader, SLOW, "slow").then(() => order.push("slow"));
    const caller = new AbortController();
    const waiting = ask(single.reader, QUICK, "waiting", caller.signal).catch((err: Error) => order.push(err.name));
    caller.abort();
    await Promise.all([slow, waiting]);
    expect(order).toEqual(["AbortError", "slow"]);
    expect((await ask(single.reader, QUICK, "after"))[0].tag).toBe("after");
  });

  it("fails, never answers short, a query running when the client is closed", async () => {
    const closing = await createStoreClients(store("1"));
    const running = ask(closing.reader, "SELECT sleepEachRow(0.2) AS s, {tag:String} AS tag FROM numbers(10) SETTINGS max_block_size = 1", "cut");
    await new Promise((resolve) => setImmediate(resolve));
    await closing.close();
    await expect(running).rejects.toThrow(/closed/);
  });
});
