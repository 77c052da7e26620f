import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { Session } from "chdb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { GetStatsRequestSchema, StatsDimension as D, TimeBucket } from "../../gen/auditlog/v1/query_pb.js";
import { appendAll } from "../helpers/bulk.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, tempDataDir, type TestServer } from "../helpers/server.ts";

const dataDir = tempDataDir();
let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let auditor: string;
const BASE = Date.UTC(2026, 9, 1);
const HOUR = 3_600_000;

/** 600 events over five weeks; only ours (reads leave events of their own). */
const EVENTS: Event[] = Array.from({ length: 600 }, (_, n) =>
  sampleEvent(n, { id: `s-${n}`, time: timestampFromDate(new Date(BASE + n * 83 * 60_000)), source: n % 5 ? "billing-api" : "auth-api" }),
);
const OURS = { sources: ["billing-api", "auth-api"] };

async function start() {
  server = await startServer({ dataDir });
  clients = connectClients(server.baseUrl, "connect-binary");
  auditor = await server.token("stats", ["auditor"]);
}

beforeAll(async () => {
  await start();
  await appendAll(clients, await server.token("stats", ["writer"]), EVENTS);
  await appendAll(clients, await server.token("other", ["writer"]), EVENTS.slice(0, 100));
});
afterAll(async () => {
  await server.stop();
  removeDataDir(dataDir);
});

type StatsRequest = MessageInitShape<typeof GetStatsRequestSchema>;
const stats = (req: StatsRequest) => clients.query.getStats(req, bearer(auditor));
/** The same request, made to scan events: a query term that excludes nothing. */
const raw = (req: StatsRequest) => stats({ ...req, filter: { ...OURS, ...req.filter, query: "-id:no-such-event" } } as StatsRequest);

const CASES: [string, StatsRequest][] = [
  ["the total", {}],
  ["by type", { groupBy: [D.TYPE] }],
  ["by type and hour", { groupBy: [D.TYPE, D.TIME], bucket: TimeBucket.HOUR, limit: 10_000 }],
  ["by action and outcome", { groupBy: [D.ACTION, D.OUTCOME] }],
  ["by severity, source and day", { groupBy: [D.SEVERITY, D.SOURCE, D.TIME], bucket: TimeBucket.DAY, limit: 10_000 }],
  ["by week", { groupBy: [D.TIME], bucket: TimeBucket.WEEK }],
  ["by month", { groupBy: [D.TIME], bucket: TimeBucket.MONTH }],
  [
    "filtered by type, severity and whole hours, by type and day",
    {
      filter: {
        types: ["auth.login", "order.viewed"],
        minSeverity: Severity.INFO,
        startTime: timestampFromDate(new Date(BASE + 48 * HOUR)),
        endTime: timestampFromDate(new Date(BASE + 400 * HOUR)),
      },
      groupBy: [D.TYPE, D.TIME],
      bucket: TimeBucket.DAY,
      limit: 10_000,
    },
  ],
];

describe("GetStats", () => {
  it.each(CASES)("%s: the rollup answers, and equals counting the events", async (_, req) => {
    const fromRollup = await stats({ ...req, filter: { ...OURS, ...req.filter } } as StatsRequest);
    const scanned = await raw(req);
    expect(fromRollup.fromRollup).toBe(true);
    expect(scanned.fromRollup).toBe(false);
    expect(fromRollup.total).toBeGreaterThan(0n);
    expect({ ...fromRollup, fromRollup: true }).toEqual({ ...scanned, fromRollup: true });
  });

  it("answers the same in every encoding (binary answers are encoded by our own code, JSON ones by protobuf-es)", async () => {
    const [, req] = CASES[4];
    const request = { ...req, filter: { ...OURS, ...req.filter } } as StatsRequest;
    const binary = await stats(request);
    expect(binary.rows.length).toBeGreaterThan(10);
    for (const protocol of ["connect-json", "grpc", "grpc-web"] as const) {
      const other = await connectClients(server.baseUrl, protocol).query.getStats(request, bearer(auditor));
      expect(other, protocol).toEqual(binary);
    }
  });

  it("counts what a hand count of the ingested events says", async () => {
    const res = await stats({ filter: OURS, groupBy: [D.TYPE] });
    const want = new Map<string, number>();
    for (const e of EVENTS) want.set(e.type, (want.get(e.type) ?? 0) + 1);
    expect(Object.fromEntries(res.rows.map((r) => [r.keys[0], Number(r.count)]))).toEqual(Object.fromEntries(want));
    expect(res.total).toBe(600n);
  });

  it("top N, then one row with the rest", async () => {
    const res = await stats({ filter: OURS, groupBy: [D.ACTOR], limit: 3 });
    expect(res.fromRollup).toBe(false);
    expect(res.rows).toHaveLength(4);
    const [a, b, c, other] = res.rows;
    expect(a.count >= b.count && b.count >= c.count).toBe(true);
    expect(other).toMatchObject({ keys: [], other: true });
    expect(a.count + b.count + c.count + other.count).toBe(600n);
  });

  it("filters the rollup cannot answer go to the events", async () => {
    for (const filter of [{ attributes: { plan: "pro" } }, { actorIds: ["user-1"] }, { text: "number" }, { startTime: timestampFromDate(new Date(BASE + 90_000)) }]) {
      expect((await stats({ filter: { ...OURS, ...filter }, groupBy: [D.TYPE] })).fromRollup, JSON.stringify(Object.keys(filter))).toBe(false);
    }
    expect((await stats({ filter: OURS, groupBy: [D.TIME], bucket: TimeBucket.MINUTE })).fromRollup).toBe(false);
  });

  it.each<[string, StatsRequest, RegExp]>([
    ["a time grouping without a bucket", { groupBy: [D.TIME] }, /bucket is required with STATS_DIMENSION_TIME/],
    ["a bucket without a time grouping", { bucket: TimeBucket.DAY }, /bucket is required with STATS_DIMENSION_TIME, and only then/],
    ["a repeated dimension", { groupBy: [D.TYPE, D.TYPE] }, /names a dimension twice/],
    ["a limit out of range", { limit: 10_001 }, /limit must be within 1..10000/],
  ])("refuses %s", async (_, req, message) => {
    await expect(stats(req)).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(message) });
  });

  it("counts only the caller's tenant, and needs a reading role", async () => {
    const other = await clients.query.getStats({ filter: OURS }, bearer(await server.token("other", ["auditor"])));
    expect(other.total).toBe(100n);
    await expect(clients.query.getStats({}, bearer(await server.token("stats", ["writer"])))).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});

describe("ListEventTypes", () => {
  it("discovers each type with its count, first and last seen, and attribute keys; a new type needs no registration", async () => {
    const res = await clients.query.listEventTypes({}, bearer(auditor));
    const login = res.types.find((t) => t.type === "auth.login")!;
    const logins = EVENTS.filter((e) => e.type === "auth.login");
    expect(login).toMatchObject({ count: BigInt(logins.length), attributeKeys: ["plan", "region", "seq"] });
    expect(login.firstSeen).toEqual(logins[0].time);
    expect(login.lastSeen).toEqual(logins.at(-1)!.time);

    await appendAll(clients, await server.token("stats", ["writer"]), [sampleEvent(1, { id: "brand-new", type: "brand.new.type", attributes: { zeta: "1", alpha: "2" } })]);
    const after = await clients.query.listEventTypes({}, bearer(auditor));
    expect(after.types.find((t) => t.type === "brand.new.type")).toMatchObject({ count: 1n, attributeKeys: ["alpha", "zeta"] });
    expect(after.types.map((t) => t.type)).toEqual([...after.types.map((t) => t.type)].sort());
  });
});

describe("GetTimeline", () => {
  it("all events of one request, oldest first, newest last", async () => {
    const res = await clients.query.getTimeline({ requestId: "req-7" }, bearer(auditor));
    expect(res.events.map((e) => e.id)).toEqual(["s-21", "s-22", "s-23"]);
    expect(res.truncated).toBe(false);
  });

  it("all events of one session", async () => {
    const res = await clients.query.getTimeline({ sessionId: "s-3" }, bearer(auditor));
    expect(res.events.map((e) => e.id)).toEqual(EVENTS.filter((e) => e.actor!.sessionId === "s-3").map((e) => e.id));
  });

  it("wants exactly one of request_id and session_id", async () => {
    await expect(clients.query.getTimeline({}, bearer(auditor))).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(clients.query.getTimeline({ requestId: "a", sessionId: "b" }, bearer(auditor))).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});

describe("rollups added to an existing store", () => {
  it("are back-filled from the events already stored", async () => {
    const before = await stats({ filter: OURS, groupBy: [D.TYPE, D.TIME], bucket: TimeBucket.DAY, limit: 10_000 });
    await server.stop();
    const session = new Session(join(dataDir, "chdb"));
    try {
      for (const q of ["DROP VIEW events_hourly_mv", "DROP TABLE events_hourly", "DROP VIEW event_types_mv", "DROP TABLE event_types"]) session.query(q);
    } finally {
      session.close();
    }
    await start();
    const after = await stats({ filter: OURS, groupBy: [D.TYPE, D.TIME], bucket: TimeBucket.DAY, limit: 10_000 });
    expect(after.fromRollup).toBe(true);
    expect(after).toEqual(before);
    expect((await clients.query.listEventTypes({}, bearer(auditor))).types.find((t) => t.type === "brand.new.type")?.count).toBe(1n);
  });
});

describe("a schema migration cut short", () => {
  it("(a rollup made, its view and back-fill not: a kill during an upgrade) is made again on the next start", async () => {
    const req = { filter: OURS, groupBy: [D.TYPE, D.TIME], bucket: TimeBucket.DAY, limit: 10_000 };
    const catalog = async () => (await clients.query.listEventTypes({}, bearer(auditor))).types.filter((t) => !t.type.startsWith("auditlog.")).map((t) => [t.type, t.count]);
    const before = await stats(req);
    const typesBefore = await catalog();
    await server.stop();
    const session = new Session(join(dataDir, "chdb"));
    try {
      // What a kill between CREATE TABLE and the end of the back-fill leaves: the table, nothing else, no mark.
      for (const q of [
        "DROP VIEW events_hourly_mv",
        "TRUNCATE TABLE events_hourly",
        "ALTER TABLE schema_steps DELETE WHERE step = 'rollup events_hourly filled' SETTINGS mutations_sync = 1",
      ]) session.query(q);
    } finally {
      session.close();
    }
    await start();
    const after = await stats(req);
    expect(after.fromRollup).toBe(true);
    expect(after).toEqual(before);
    expect(await catalog()).toEqual(typesBefore);
  });
});

describe("an hourly rollup of the first release (no week of receipt, no retention)", () => {
  it("is made again from the events on start, with the same counts", async () => {
    const req = { filter: OURS, groupBy: [D.TYPE, D.TIME], bucket: TimeBucket.DAY, limit: 10_000 };
    const before = await stats(req);
    await server.stop();
    const session = new Session(join(dataDir, "chdb"));
    try {
      for (const q of [
        "DROP VIEW events_hourly_mv",
        "DROP TABLE events_hourly",
        `CREATE TABLE events_hourly (tenant_id LowCardinality(String), hour DateTime('UTC'), type LowCardinality(String),
           action LowCardinality(String), severity Enum8('UNSPECIFIED' = 0, 'INFO' = 1, 'WARNING' = 2, 'ERROR' = 3, 'CRITICAL' = 4),
           outcome Enum8('UNSPECIFIED' = 0, 'SUCCESS' = 1, 'FAILURE' = 2), source LowCardinality(String), events UInt64)
         ENGINE = SummingMergeTree PARTITION BY toYYYYMM(hour) ORDER BY (tenant_id, hour, type, action, severity, outcome, source)
         TTL hour + INTERVAL 90 DAY`,
        `CREATE MATERIALIZED VIEW events_hourly_mv TO events_hourly AS SELECT tenant_id, toStartOfHour(time) AS hour, type, action,
           severity, outcome, source, count() AS events FROM events GROUP BY tenant_id, hour, type, action, severity, outcome, source`,
        // What it held, and a count too many that recounting the events must not keep.
        "INSERT INTO events_hourly SELECT tenant_id, toStartOfHour(time) AS hour, type, action, severity, outcome, source, count() FROM events GROUP BY ALL",
        "INSERT INTO events_hourly SELECT tenant_id, hour, type, action, severity, outcome, source, 1 FROM events_hourly WHERE tenant_id = 'stats' LIMIT 1",
      ]) session.query(q);
    } finally {
      session.close();
    }
    await start();
    expect(await stats(req)).toEqual(before);
    // New events are counted by the new view alone.
    await appendAll(clients, await server.token("stats", ["writer"]), [sampleEvent(1, { id: "after-v2", source: "auth-api", time: EVENTS[0].time })]);
    const after = await stats({ ...req, groupBy: [D.TIME], bucket: TimeBucket.MONTH });
    expect(after.fromRollup).toBe(true);
    expect(after.total).toBe(before.total + 1n);
  });
});

describe("a catalog made before its commit-time marker", () => {
  it("gets the marker column and keeps its counts, through new events and restarts", async () => {
    // Our types only: each read leaves an audit event of its own type.
    const counts = async () =>
      new Map((await clients.query.listEventTypes({}, bearer(auditor))).types.filter((t) => !t.type.startsWith("auditlog.")).map((t) => [t.type, t.count]));
    const before = await counts();
    await server.stop();
    const session = new Session(join(dataDir, "chdb"));
    try {
      // The catalog and its view as the release before the marker made them (and before schema steps were marked).
      for (const q of [
        "DROP TABLE schema_steps",
        "DROP VIEW event_types_mv",
        "ALTER TABLE event_types DROP COLUMN last_received_at",
        `CREATE MATERIALIZED VIEW event_types_mv TO event_types AS SELECT tenant_id, type, count() AS events, min(time) AS first_seen,
           max(time) AS last_seen, groupUniqArrayArray(arrayMap(k -> toString(k), mapKeys(attributes))) AS attribute_keys
         FROM events GROUP BY tenant_id, type`,
      ]) session.query(q);
    } finally {
      session.close();
    }
    await start();
    expect(await counts()).toEqual(before);
    await appendAll(clients, await server.token("stats", ["writer"]), [sampleEvent(1, { id: "after-marker", type: "auth.login" })]);
    const added = await counts();
    expect(added.get("auth.login")).toBe(before.get("auth.login")! + 1n);
    await server.stop();
    await start();
    expect(server.logs.filter((l) => l.msg === "restored rows a crash kept from a materialized view")).toEqual([]);
    expect(await counts()).toEqual(added);
  });
});
