import { ClickHouseError, type ClickHouseClient } from "@clickhouse/client";
import { Session } from "chdb";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { createStoreClients, type StoreClients } from "../../src/store/client.ts";
import { removeDataDir, tempDataDir } from "../helpers/server.ts";

/**
 * chdb-node runs the parameterized queries of a process one at a time. While
 * one runs, the service's other parameterized SELECTs stream on sessions of
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

  /** Runs `body` while a slow read holds chdb-node's queue (so that the parameterized SELECTs in it stream). */
  async function whileQueueBusy<T>(clients: StoreClients, body: () => Promise<T>): Promise<T> {
    const holder = ask(clients.reader, SLOW, "holder");
    try {
      return await body();
    } finally {
      await holder;
    }
  }

  /** Starts a slow read, then quick queries, and returns the order in which they answered (each with its own parameter). */
  async function answerOrder(quickOn: ClickHouseClient, quick = 1): Promise<string[]> {
    const order: string[] = [];
    const note = (rows: { tag: string }[]) => order.push(rows[0].tag);
    const slow = ask(pooled.reader, SLOW, "slow").then(note);
    const quickOnes = Array.from({ length: quick }, (_, i) => ask(quickOn, QUICK, `quick-${i}`).then(note));
    await Promise.all([slow, ...quickOnes]);
    return order;
  }

  it("answers quick reads while a slow one runs", async () => {
    // Two read sessions: the quick reads run two at a time, in either order.
    const order = await answerOrder(pooled.reader, 5);
    expect(order.at(-1)).toBe("slow");
    expect(order.slice(0, -1).sort()).toEqual(["quick-0", "quick-1", "quick-2", "quick-3", "quick-4"]);
  });

  it("answers the writer's lookup while a slow read runs", async () => {
    expect(await answerOrder(pooled.writer)).toEqual(["quick-0", "slow"]);
  });

  it("(why: chdb-node's own parameterized calls on two sessions wait for each other)", async () => {
    const [a, b] = [new Session(join(dataDir, "chdb")), new Session(join(dataDir, "chdb"))];
    const order: string[] = [];
    await Promise.all([
      a.queryBindAsync(SLOW, { tag: "slow" }).then(() => order.push("slow")),
      b.queryBindAsync(QUICK, { tag: "quick" }).then(() => order.push("quick")),
    ]);
    a.close();
    b.close();
    expect(order).toEqual(["slow", "quick"]);
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

  it("streams the compact format the idempotency lookup uses", async () => {
    const rows = await whileQueueBusy(pooled, async () => {
      const result = await pooled.writer.query({ query: "SELECT {a:String} AS a, {n:UInt32} AS n", query_params: { a: "tenant", n: 7 }, format: "JSONCompactEachRow" });
      return result.json();
    });
    expect(rows).toEqual([["tenant", 7]]);
  });

  it("refuses per-call settings and SET statements, which chdb would leave on the session for every later query", async () => {
    const blockSize = () => pooled.reader.query({ query: "SELECT getSetting('max_block_size') AS b", format: "JSONEachRow" }).then((r) => r.json<{ b: number }>());
    const before = await blockSize();
    expect(before[0].b).not.toBe(4096);
    await expect(pooled.reader.query({ query: "SELECT 1", format: "JSONEachRow", clickhouse_settings: { max_block_size: "4096" } })).rejects.toThrow(
      /clickhouse_settings \(max_block_size\) would stay on the embedded engine's session.*SETTINGS clause/,
    );
    await expect(pooled.writer.command({ query: "SELECT 1", clickhouse_settings: { max_block_size: "4096" } })).rejects.toThrow(/max_block_size/);
    await expect(pooled.writer.exec({ query: "SELECT 1", clickhouse_settings: { max_block_size: "4096" } })).rejects.toThrow(/max_block_size/);
    await expect(pooled.writer.command({ query: " set max_block_size = 4096" })).rejects.toThrow(/a SET statement would stay/);
    // A setting in the statement's own clause is for that statement only.
    expect(await pooled.reader.query({ query: "SELECT getSetting('max_block_size') AS b SETTINGS max_block_size = 4096", format: "JSONEachRow" }).then((r) => r.json())).toEqual([{ b: 4096 }]);
    expect(await blockSize()).toEqual(before);
  });

  it("fails a streamed query that is bad, or fails while its rows are read, with the engine's error, and keeps serving", async () => {
    await whileQueueBusy(pooled, async () => {
      const unknown = pooled.writer.query({ query: "SELECT no_such_column WHERE {tag:String} = ''", query_params: { tag: "" } });
      await expect(unknown).rejects.toBeInstanceOf(ClickHouseError);
      await expect(unknown).rejects.toMatchObject({ code: "47", type: "UNKNOWN_IDENTIFIER" });
      const late = pooled.writer.query({
        query: "SELECT throwIf(number = 70000, 'failed late') AS x, {tag:String} AS tag FROM numbers(100000)",
        query_params: { tag: "" },
        format: "JSONEachRow",
      });
      await expect(late).rejects.toMatchObject({ code: "395", message: expect.stringContaining("failed late") });
      const answers = await Promise.all([0, 1, 2, 3].map((i) => ask(pooled.writer, QUICK, `after-${i}`)));
      expect(answers.map((rows) => rows[0].tag)).toEqual(["after-0", "after-1", "after-2", "after-3"]);
    });
  });

  it("gives up a query waiting for a session when its caller aborts, without waiting for the session", async () => {
    const order: string[] = [];
    // The first slow read holds chdb-node's queue, the second the one read session.
    const slow = [ask(single.reader, SLOW, "slow-0"), ask(single.reader, SLOW, "slow-1")].map((p) => p.then(() => order.push("slow")));
    const caller = new AbortController();
    const waiting = ask(single.reader, QUICK, "waiting", caller.signal).catch((err: Error) => order.push(err.name));
    caller.abort();
    await Promise.all([...slow, waiting]);
    expect(order).toEqual(["AbortError", "slow", "slow"]);
    expect((await ask(single.reader, QUICK, "after"))[0].tag).toBe("after");
  });

  it("fails a query its caller aborts with the abort, whether it streams or not", async () => {
    const caller = new AbortController();
    const alone = ask(single.reader, SLOW, "alone", caller.signal);
    caller.abort();
    await expect(alone).rejects.toMatchObject({ name: "AbortError" });
    const busy = new AbortController();
    const streamed = whileQueueBusy(single, async () => {
      const running = ask(single.reader, SLOW, "streamed", busy.signal);
      busy.abort();
      return running;
    });
    await expect(streamed).rejects.toMatchObject({ name: "AbortError" });
  });

  it("fails, never answers short, a streamed query running when the client is closed", async () => {
    const closing = await createStoreClients(store("1"));
    const holder = ask(closing.reader, SLOW, "holder").catch(() => {});
    const running = ask(closing.reader, "SELECT sleepEachRow(0.2) AS s, {tag:String} AS tag FROM numbers(10) SETTINGS max_block_size = 1", "cut");
    await new Promise((resolve) => setImmediate(resolve));
    await closing.close();
    await expect(running).rejects.toThrow(/closed/);
    await holder;
  });
});
