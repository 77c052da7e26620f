import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { bearer, connectClients, grpcJsIngestClient, postJson } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, ROOT, startServer, tempDataDir, TEST_SECRET, type TestServer } from "../helpers/server.ts";
import { readStoreSql, runStoreSql } from "../helpers/store-sql.ts";
import { SERVER_MADE_ID_REGEX } from "../../src/ingest/uuid7.ts";
import { StatsDimension, TimeBucket } from "../../gen/auditlog/v1/query_pb.js";
import { scrapeMetrics } from "../helpers/metrics.ts";
import type { Event } from "../../gen/auditlog/v1/event_pb.js";

const dataDir = tempDataDir();
afterAll(() => removeDataDir(dataDir));

async function countByAttribute(server: TestServer, key: string, value: string, tenant = "acme"): Promise<string[]> {
  const { query } = connectClients(server.baseUrl, "connect-binary");
  const auditor = await server.token(tenant, ["auditor"]);
  const ids: string[] = [];
  let pageToken = "";
  do {
    const res = await query.searchEvents({ filter: { attributes: { [key]: value } }, pageSize: 1000, pageToken }, bearer(auditor));
    ids.push(...res.events.map((e) => e.id));
    pageToken = res.nextPageToken;
  } while (pageToken);
  return ids;
}

describe("an acknowledged event survives a crash", () => {
  const batch = Array.from({ length: 2000 }, (_, n) => sampleEvent(n, { id: `crash-${n}`, attributes: { run: "crash" } }));

  it("has every acknowledged event after SIGKILL right after the ack", async () => {
    const server = await startServer({ dataDir });
    const { ingest } = connectClients(server.baseUrl, "grpc");
    const res = await ingest.append({ events: batch }, bearer(await server.token("acme", ["writer"])));
    expect(res.acceptedCount).toBe(2000n);
    await server.crash();

    const restarted = await startServer({ dataDir });
    const ids = await countByAttribute(restarted, "run", "crash");
    expect(new Set(ids)).toEqual(new Set(batch.map((e) => e.id)));
    expect(ids).toHaveLength(2000);

    // The client never saw that ack (say) and retries the whole batch: stored once.
    const retry = await connectClients(restarted.baseUrl, "grpc").ingest.append(
      { events: batch },
      bearer(await restarted.token("acme", ["writer"])),
    );
    expect(retry).toMatchObject({ acceptedCount: 2000n, duplicateCount: 2000n });
    expect(await countByAttribute(restarted, "run", "crash")).toHaveLength(2000);
    expect(await restarted.stop()).toBe(0);
  });

  it("stores a retried id once, also inside one request and across protocols", async () => {
    const server = await startServer({ dataDir });
    const writer = await server.token("acme", ["writer"]);
    const e = (id: string) => ({ id, type: "retry.test", action: "CREATE", actor: { id: "u" }, attributes: { run: "retry" } });
    const first = await postJson(server.baseUrl, "auditlog.v1.IngestService/Append", { events: [e("r-1"), e("r-1"), e("r-2")] }, writer);
    expect(first.json).toMatchObject({ acceptedCount: "3", duplicateCount: "1" });
    const again = await connectClients(server.baseUrl, "connect-binary").ingest.append(
      { events: [sampleEvent(1, { id: "r-2", attributes: { run: "retry" } }), sampleEvent(2, { id: "r-3", attributes: { run: "retry" } })] },
      bearer(writer),
    );
    expect(again).toMatchObject({ acceptedCount: 2n, duplicateCount: 1n });
    expect((await countByAttribute(server, "run", "retry")).sort()).toEqual(["r-1", "r-2", "r-3"]);
    // The same id in another tenant is another event.
    const other = await postJson(server.baseUrl, "auditlog.v1.IngestService/Append", { events: [e("r-1")] }, await server.token("globex", ["writer"]));
    expect(other.json).toMatchObject({ acceptedCount: "1" });
    expect(other.json.duplicateCount ?? "0").toBe("0");
    expect(await server.stop()).toBe(0);
  });
});

describe("idempotency when event_ids holds client-chosen ids only", () => {
  const ownDir = tempDataDir();
  afterAll(() => removeDataDir(ownDir));
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  const SERVER_MADE = new RegExp(SERVER_MADE_ID_REGEX);
  /** A client's UUIDv7 that happens to carry the server's mark (1 in 4,096 of them do). */
  const markedClientId = (ms: number, tail: string) => {
    const hex = ms.toString(16).padStart(12, "0");
    return `${hex.slice(0, 8)}-${hex.slice(8)}-7a10-8000-${tail.padStart(12, "0")}`;
  };
  const idsInIndex = () => readStoreSql<{ id: string }>(ownDir, "SELECT id FROM event_ids WHERE tenant_id = 'ids' ORDER BY id").map((r) => r.id);
  const run = (n: number, id: string) => sampleEvent(n, { id, attributes: { run: "ids" } });
  let resent: Event[] = [];

  it("finds an id the server made, and a client's id with the server's mark, when a client sends it again", async () => {
    const server = await startServer({ dataDir: ownDir });
    try {
      const writer = bearer(await server.token("ids", ["writer"]));
      const { ingest } = connectClients(server.baseUrl, "connect-binary");
      const unnamed = [0, 1, 2].map((n) => run(n, ""));
      const first = await ingest.append({ events: unnamed }, writer);
      expect(first.ids).toHaveLength(3);
      for (const id of first.ids) expect(id).toMatch(SERVER_MADE);
      // Made an hour ago, and by a clock two hours ahead of the server's.
      const clientIds = ["c-1", markedClientId(Date.now() - HOUR, "1"), markedClientId(Date.now() + 2 * HOUR, "2")];
      const named = clientIds.map((id, n) => run(10 + n, id));
      expect((await ingest.append({ events: named }, writer)).acceptedCount).toBe(3n);

      // The server's ids now sent by the client, and the client's own again: all six are duplicates.
      resent = [...unnamed.map((e, i) => ({ ...e, id: first.ids[i] })), ...named];
      expect(await ingest.append({ events: resent }, writer)).toMatchObject({ acceptedCount: 6n, duplicateCount: 6n });
      expect(await countByAttribute(server, "run", "ids", "ids")).toHaveLength(6);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    // Only the client's unmarked id is in the index; the marked ones were found in the events.
    expect(idsInIndex()).toEqual(["c-1"]);
  });

  it("changes an event_ids view of the first release in place, keeping what it holds", async () => {
    const plant = "planted-by-old-view";
    runStoreSql(ownDir, [
      "ALTER TABLE event_ids_mv MODIFY QUERY SELECT tenant_id, id, toDateTime(received_at) AS received_at FROM events",
      // The old view writes whatever id it gets, the marked ones too.
      `INSERT INTO events SELECT * REPLACE ('${plant}' AS id) FROM events WHERE tenant_id = 'ids' AND events.id = 'c-1'`,
      `INSERT INTO events SELECT * REPLACE (concat(substring(id, 1, 24), reverse(substring(id, 25))) AS id, now64(6) AS received_at) FROM events WHERE tenant_id = 'ids' AND attributes['run'] = 'ids' AND match(id, '${SERVER_MADE_ID_REGEX}') LIMIT 1`,
      // A client's marked id whose timestamp lies days after its receipt: still found within the window.
      `INSERT INTO events SELECT * REPLACE ('${markedClientId(Date.now() + 3 * DAY, "3")}' AS id, now64(6) - INTERVAL 2 DAY AS received_at) FROM events WHERE tenant_id = 'ids' AND events.id = 'c-1'`,
    ]);
    expect(idsInIndex()).toHaveLength(4);
    const server = await startServer({ dataDir: ownDir });
    try {
      const writer = bearer(await server.token("ids", ["writer"]));
      const { ingest } = connectClients(server.baseUrl, "connect-binary");
      const stored = await countByAttribute(server, "run", "ids", "ids");
      expect(stored).toHaveLength(9);
      const again = stored.map((id, n) => run(20 + n, id));
      expect(await ingest.append({ events: again }, writer)).toMatchObject({ acceptedCount: 9n, duplicateCount: 9n });
      // A new event without an id: the view no longer writes its id.
      expect((await ingest.append({ events: [run(40, "")] }, writer)).acceptedCount).toBe(1n);
      expect(await ingest.append({ events: resent }, writer)).toMatchObject({ duplicateCount: 6n });
    } finally {
      expect(await server.stop()).toBe(0);
    }
    const index = idsInIndex();
    expect(index).toHaveLength(4);
    expect(index).toEqual(expect.arrayContaining(["c-1", plant]));
    const [view] = readStoreSql<{ as_select: string }>(ownDir, "SELECT as_select FROM system.tables WHERE name = 'event_ids_mv'");
    expect(view.as_select).toContain(SERVER_MADE_ID_REGEX);
  });
});

describe("a crash between an INSERT's events part and its views' parts", () => {
  const RESTORED = "restored rows a crash kept from a materialized view";

  /**
   * Stores `events` in `tenant` on a fresh store, then, with the server down,
   * runs `statements` on it (what a SIGKILL at the wrong moment leaves: a
   * batch's events part committed, its views' parts not; a view detached for
   * one INSERT is attached again when the store next opens), and starts the
   * server again on it.
   */
  async function restartedAfter(ownDir: string, tenant: string, events: Event[], statements: string[]): Promise<TestServer> {
    const first = await startServer({ dataDir: ownDir });
    const writer = bearer(await first.token(tenant, ["writer"]));
    expect((await connectClients(first.baseUrl, "connect-binary").ingest.append({ events }, writer)).acceptedCount).toBe(BigInt(events.length));
    expect(await first.stop()).toBe(0);
    runStoreSql(ownDir, statements);
    return startServer({ dataDir: ownDir });
  }
  const copyAsNewestBatch = (tenant: string) =>
    `INSERT INTO events SELECT * REPLACE (concat(id, '-cut') AS id, now64(6) AS received_at) FROM events WHERE tenant_id = '${tenant}'`;

  it("tops up stats and the type catalog on the next start, so they equal counting the events", async () => {
    const ownDir = tempDataDir();
    const events = Array.from({ length: 60 }, (_, n) => sampleEvent(n, { id: `cut-${n}` }));
    let server = await restartedAfter(ownDir, "cut", events, ["DETACH TABLE events_hourly_mv", "DETACH TABLE event_types_mv", copyAsNewestBatch("cut")]);
    try {
      const repaired = server.logs.filter((l) => l.msg === RESTORED).map((l) => l.table);
      expect(repaired).toEqual(expect.arrayContaining(["events_hourly", "event_types"]));
      const { query } = connectClients(server.baseUrl, "connect-binary");
      const auth = bearer(await server.token("cut", ["auditor"]));
      // The sample's types only: each read is audited in the tenant as it goes.
      const types = [...new Set(events.map((e) => e.type))];
      const byType = { filter: { types }, groupBy: [StatsDimension.TYPE, StatsDimension.TIME], bucket: TimeBucket.HOUR, limit: 1000 };
      const fromRollup = await query.getStats(byType, auth);
      // A query term that excludes nothing makes the same question scan the events.
      const scanned = await query.getStats({ ...byType, filter: { types, query: "-id:no-such-event" } }, auth);
      expect(fromRollup.fromRollup).toBe(true);
      expect(scanned.fromRollup).toBe(false);
      expect(fromRollup.total).toBe(120n);
      expect({ ...fromRollup, fromRollup: true }).toEqual({ ...scanned, fromRollup: true });
      const catalog = await query.listEventTypes({}, auth);
      expect(catalog.types.filter((t) => types.includes(t.type)).reduce((n, t) => n + t.count, 0n)).toBe(120n);

      // A second start finds nothing more to add.
      expect(await server.stop()).toBe(0);
      server = await startServer({ dataDir: ownDir });
      expect(server.logs.filter((l) => l.msg === RESTORED)).toEqual([]);
      expect((await connectClients(server.baseUrl, "connect-binary").query.getStats(byType, auth)).total).toBe(120n);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(ownDir);
    }
  });

  it("tops up stats and the catalog for every batch of the last two minutes, as a power loss can take several views' parts", async () => {
    const ownDir = tempDataDir();
    const events = Array.from({ length: 30 }, (_, n) => sampleEvent(n, { id: `lost-${n}`, type: "lost.power" }));
    const copyAs = (suffix: string, ago: string) =>
      `INSERT INTO events SELECT * REPLACE (concat(id, '-${suffix}') AS id, now64(6) - INTERVAL ${ago} AS received_at) FROM events WHERE tenant_id = 'lost' AND events.id LIKE 'lost-%' AND NOT events.id LIKE '%-%-%'`;
    // Two batches the views never saw, committed after the one they counted.
    const server = await restartedAfter(ownDir, "lost", events, [
      "DETACH TABLE events_hourly_mv",
      "DETACH TABLE event_types_mv",
      copyAs("a", "500 MILLISECOND"),
      copyAs("b", "0 SECOND"),
    ]);
    try {
      const { query } = connectClients(server.baseUrl, "connect-binary");
      const auth = bearer(await server.token("lost", ["auditor"]));
      const byType = { filter: { types: ["lost.power"] }, groupBy: [StatsDimension.TYPE, StatsDimension.TIME], bucket: TimeBucket.HOUR, limit: 1000 };
      const fromRollup = await query.getStats(byType, auth);
      const scanned = await query.getStats({ ...byType, filter: { types: ["lost.power"], query: "-id:no-such-event" } }, auth);
      expect(fromRollup.fromRollup).toBe(true);
      expect(fromRollup.total).toBe(90n);
      expect({ ...fromRollup, fromRollup: true }).toEqual({ ...scanned, fromRollup: true });
      const { types } = await query.listEventTypes({}, auth);
      expect(types.find((t) => t.type === "lost.power")?.count).toBe(90n);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(ownDir);
    }
  });

  it("restores the cut batch's client-chosen ids to event_ids, so their retries are still found", async () => {
    const ownDir = tempDataDir();
    const events = Array.from({ length: 20 }, (_, n) => sampleEvent(n, { id: n < 10 ? `named-${n}` : "", attributes: { run: "cut-ids" } }));
    // The copy keeps a server-made id marked (its last 12 digits reversed) and suffixes a client's.
    const copy = `INSERT INTO events SELECT * REPLACE (if(match(id, '${SERVER_MADE_ID_REGEX}'), concat(substring(id, 1, 24), reverse(substring(id, 25))), concat(id, '-cut')) AS id, now64(6) AS received_at) FROM events WHERE tenant_id = 'cut-ids'`;
    const server = await restartedAfter(ownDir, "cut-ids", events, ["DETACH TABLE event_ids_mv", copy]);
    try {
      // The ten client ids; server-made ids are never in event_ids.
      expect(server.logs.filter((l) => l.msg === RESTORED && l.table === "event_ids").map((l) => l.added)).toEqual([10]);
      const stored = await countByAttribute(server, "run", "cut-ids", "cut-ids");
      expect(stored).toHaveLength(40);
      const retry = stored.map((id, n) => sampleEvent(100 + n, { id }));
      const res = await connectClients(server.baseUrl, "connect-binary").ingest.append({ events: retry }, bearer(await server.token("cut-ids", ["writer"])));
      expect(res).toMatchObject({ acceptedCount: 40n, duplicateCount: 40n });
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(ownDir);
    }
  });

  it("tops up the type catalog by its commit-time marker, even where retention has removed events it counted", async () => {
    const ownDir = tempDataDir();
    const events = Array.from({ length: 20 }, (_, n) => sampleEvent(n, { id: `exp-${n}`, type: "cut.catalog" }));
    // Five events gone (as retention removes them: the catalog keeps counting
    // them), then a batch of 15 that the catalog's view never saw.
    const server = await restartedAfter(ownDir, "expired", events, [
      "ALTER TABLE events DELETE WHERE tenant_id = 'expired' AND id IN ('exp-0', 'exp-1', 'exp-2', 'exp-3', 'exp-4') SETTINGS mutations_sync = 1",
      "DETACH TABLE event_types_mv",
      copyAsNewestBatch("expired"),
    ]);
    try {
      const auth = bearer(await server.token("expired", ["auditor"]));
      const { types } = await connectClients(server.baseUrl, "connect-binary").query.listEventTypes({}, auth);
      // Counting the 30 stored events again would say 30; the catalog counts every event it has seen.
      expect(types.find((t) => t.type === "cut.catalog")?.count).toBe(35n);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(ownDir);
    }
  });
});

describe("graceful shutdown", () => {
  it("commits what a stream sent before SIGTERM, answers it, then exits 0", async () => {
    const server = await startServer({
      dataDir,
      env: { AUDITLOG_BATCH_MAX_DELAY_MS: "5000", AUDITLOG_BATCH_MAX_EVENTS: "100000", LOG_LEVEL: "debug" },
    });
    const client = grpcJsIngestClient(server.port);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${await server.token("acme", ["writer"])}`);
    let answered: unknown;
    const done = new Promise<void>((resolve, reject) => {
      const call = client.Ingest(md, (err: Error | null, res: unknown) => (err ? reject(err) : ((answered = res), resolve())));
      call.write({ events: Array.from({ length: 300 }, (_, n) => ({ id: `term-${n}`, type: "term.test", action: "CREATE", actor: { id: "u" }, attributes: { run: "term" } })) });
      call.end();
    });
    // The batch would wait 5 s for more events; SIGTERM must neither wait for that nor lose them.
    await server.waitForLog((e) => e.msg === "events admitted" && e.admitted === 300);
    const exit = server.stop();
    await done;
    expect(await exit).toBe(0);
    expect(answered).toMatchObject({ acceptedCount: "300" });
    // Its last words reach the log before it exits.
    expect((await server.waitForLog((l) => l.msg === "stopped cleanly")).msg).toBe("stopped cleanly");
    client.close();

    const restarted = await startServer({ dataDir });
    expect(await countByAttribute(restarted, "run", "term")).toHaveLength(300);
    await restarted.stop();
  });
});

describe("shutdown when nobody reads the logs", () => {
  it("still exits 0 on SIGTERM after its stdout reader has gone", async () => {
    const ownDir = tempDataDir();
    const child = spawn(process.execPath, [join(ROOT, "bin/auditlog.mjs"), "serve"], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", AUDITLOG_DATA_DIR: ownDir, AUDITLOG_JWT_SECRET: TEST_SECRET },
      stdio: ["ignore", "pipe", "ignore"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line.includes('"msg":"listening')) resolve();
      });
    });
    // The log collector dies: every later log line meets a closed pipe.
    child.stdout!.destroy();
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    removeDataDir(ownDir);
  });
});

describe("when storage is unreachable", () => {
  it("answers UNAVAILABLE, acknowledges nothing, reports not ready, and keeps serving", async () => {
    // A ClickHouse URL where nothing listens: the real client, the real network, no server.
    const blackhole = createServer();
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
    const port = (blackhole.address() as AddressInfo).port;
    await new Promise((r) => blackhole.close(r));
    const server = await startServer({ env: { CLICKHOUSE_URL: `http://127.0.0.1:${port}` } });
    const writer = await server.token("acme", ["writer"]);
    const res = await postJson(server.baseUrl, "auditlog.v1.IngestService/Append", { events: [{ type: "x.y", action: "CREATE", actor: { id: "u" } }] }, writer);
    expect(res.status).toBe(503);
    expect(res.json.code).toBe("unavailable");
    expect(res.json.message).toBe("storage is not ready yet; retry shortly");
    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: "unavailable" });
    const search = await postJson(server.baseUrl, "auditlog.v1.QueryService/SearchEvents", {}, await server.token("acme", ["auditor"]));
    expect(search.status).toBe(503);
    // The metrics an operator looks at now still answer; the store's own gauges are left out.
    const metrics = await scrapeMetrics(server.baseUrl);
    expect(metrics.value("auditlog_store_parts", { table: "events", kind: "parts" })).toBeUndefined();
    expect(metrics.count("auditlog_rpc_requests_total", { method: "auditlog.v1.IngestService/Append", code: "unavailable" })).toBe(1);
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });
});

describe("an INSERT that fails after its events part is committed (a view failing)", () => {
  it("is repaired before the next batch, so a retry of its events is a duplicate, not a second copy", async () => {
    const ownDir = tempDataDir();
    await (await startServer({ dataDir: ownDir })).stop();
    // A view made before event_ids_mv fails on one message: ClickHouse has
    // committed the events' part and stops before the views after it.
    const [ids] = readStoreSql<{ as_select: string }>(ownDir, "SELECT as_select FROM system.tables WHERE name = 'event_ids_mv'");
    runStoreSql(ownDir, [
      "DROP VIEW event_ids_mv",
      "CREATE TABLE failing_sink (x UInt8) ENGINE = MergeTree ORDER BY x",
      "CREATE MATERIALIZED VIEW failing_mv TO failing_sink AS SELECT throwIf(message = 'fail this insert', 'the view failed') AS x FROM events",
      `CREATE MATERIALIZED VIEW event_ids_mv TO event_ids AS ${ids.as_select}`,
    ]);
    const server = await startServer({ dataDir: ownDir });
    try {
      const writer = bearer(await server.token("acme", ["writer"]));
      const { ingest } = connectClients(server.baseUrl, "connect-binary");
      const event = (message: string) => sampleEvent(1, { id: "retried-1", message, attributes: { run: "view-failed" } });
      await expect(ingest.append({ events: [event("fail this insert")] }, writer)).rejects.toMatchObject({ code: 14 });
      // The client retries the same id (here with a message the view lets through).
      expect(await ingest.append({ events: [event("the retry")] }, writer)).toMatchObject({ acceptedCount: 1n, duplicateCount: 1n });
      expect(await countByAttribute(server, "run", "view-failed")).toEqual(["retried-1"]);
      expect(server.logs.filter((l) => l.msg === "restored rows a crash kept from a materialized view").map((l) => l.table)).toContain("event_ids");
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(ownDir);
    }
  });
});
