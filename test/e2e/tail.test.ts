import { fromJson, toJson, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventFilterSchema, EventSchema, Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import { TailEventsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { appendAll, searchAllJson } from "../helpers/bulk.ts";
import { connectClients } from "../helpers/clients.ts";
import { encodingSampleEvents, sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail, socketTail, type TailCollector } from "../helpers/tail.ts";

let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let stopped = false;

beforeAll(async () => {
  // A small per-subscriber queue, so a stalled reader overflows it quickly.
  server = await startServer({ env: { AUDITLOG_TAIL_QUEUE_BYTES: String(256 * 1024) } });
  clients = connectClients(server.baseUrl, "grpc");
});
afterAll(async () => {
  if (!stopped) expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

const ids = (c: TailCollector) => c.events.map((e) => e.id as string);
/** Microseconds since the epoch of an RFC 3339 timestamp as protobuf JSON writes it (0, 3, 6 or 9 fraction digits). */
const micros = (ts: string) => {
  const [, whole, fraction = ""] = /^(.*?)(?:\.(\d+))?Z$/.exec(ts)!;
  return Date.parse(`${whole}Z`) * 1000 + Number(fraction.padEnd(6, "0").slice(0, 6));
};
const tokens = async (tenant: string) => ({
  writer: await server.token(tenant, ["writer"]),
  auditor: await server.token(tenant, ["auditor"]),
});
const events = (from: number, count: number, overrides: MessageInitShape<typeof EventSchema> = {}) =>
  Array.from({ length: count }, (_, i) => sampleEvent(from + i, { id: `${overrides.source ?? "e"}-${from + i}`, ...overrides }));

describe("TailEvents messages are the same in every encoding", () => {
  it("sends binary requests (own encoder) exactly what it sends JSON ones (protobuf-es), replayed and live, chain fields and checkpoints included", async () => {
    const t = await tokens("tail-encodings");
    const since = timestampFromDate(new Date(Date.now() - 60_000));
    const sent = encodingSampleEvents();
    await appendAll(clients, t.writer, sent.slice(0, 2));
    await appendAll(clients, t.writer, sent.slice(2));
    const protocols = ["connect-json", "connect-binary", "grpc", "grpc-web"] as const;
    const tails = protocols.map((protocol) =>
      connectTail(connectClients(server.baseUrl, protocol), t.auditor, { filter: { attributes: { suite: "encodings" } }, since }),
    );
    await Promise.all(tails.map((tail) => tail.collector.until((c) => c.live)));
    // And live: one more event once every tail is past its replay.
    await appendAll(clients, t.writer, [sampleEvent(4, { id: "enc-4", before: { n: -0.25 }, attributes: { suite: "encodings" } })]);
    await Promise.all(tails.map((tail) => tail.collector.until((c) => c.events.length === 5)));
    for (const tail of tails) tail.close();
    const [json, ...binary] = tails.map((tail) => tail.collector.messages);
    expect(json.flatMap((m) => m.events ?? []).map((e) => e.id)).toEqual(["enc-0", "enc-1", "enc-2", "enc-3", "enc-4"]);
    expect(json.flatMap((m) => m.events ?? []).some((e) => e.checkpoint !== undefined)).toBe(true);
    binary.forEach((messages, i) => expect(messages, protocols[i + 1]).toEqual(json));
  });
});

describe("TailEvents over a generated Connect client (gRPC)", () => {
  it("delivers committed events matching the filter, and never another tenant's", async () => {
    const a = await tokens("tail-a");
    const b = await tokens("tail-b");
    const tail = connectTail(clients, a.auditor, { filter: { types: ["order.viewed"], sources: ["s1"] } });
    await tail.collector.until((c) => c.live);
    await appendAll(clients, b.writer, events(0, 50, { source: "s1" }));
    await appendAll(clients, a.writer, events(0, 50, { source: "s1" }));
    const want = events(0, 50).filter((e) => e.type === "order.viewed").map((e) => `s1-${e.id.slice(2)}`);
    // A last matching event: once it arrives, everything before it has too.
    await appendAll(clients, a.writer, [sampleEvent(999, { id: "s1-last", type: "order.viewed", source: "s1" })]);
    await tail.collector.until((c) => ids(c).includes("s1-last"));
    tail.close();
    // Within one batch, commit order is by id.
    expect(ids(tail.collector)).toEqual([...want.sort(), "s1-last"]);
    expect(tail.collector.events.every((e) => e.tenantId === "tail-a" && e.type === "order.viewed")).toBe(true);
  });

  it("sends each event as SearchEvents returns it", async () => {
    const t = await tokens("tail-same");
    const tail = connectTail(clients, t.auditor, { filter: { sources: ["same"] } });
    await tail.collector.until((c) => c.live);
    await appendAll(clients, t.writer, events(0, 20, { source: "same", before: { a: 1 }, after: { a: [2, "x"] } }));
    await tail.collector.until((c) => c.events.length === 20);
    tail.close();
    const searched = (await searchAllJson(clients, t.auditor, { sources: ["same"] })).reverse();
    const byId = (list: JsonObject[]) => Object.fromEntries(list.map((e) => [e.id, e]));
    expect(byId(tail.collector.events)).toEqual(byId(searched));
  });

  it("replays from a time, then switches to live without gaps or duplicates while events keep coming", async () => {
    const t = await tokens("tail-replay");
    const since = timestampFromDate(new Date());
    await appendAll(clients, t.writer, events(0, 3000, { source: "rp" }), 500);
    // Ingest keeps running while the tail replays and goes live.
    const more = (async () => {
      for (let i = 3000; i < 6000; i += 100) await appendAll(clients, t.writer, events(i, 100, { source: "rp" }));
    })();
    const tail = connectTail(clients, t.auditor, { filter: { sources: ["rp"] }, since });
    await more;
    await tail.collector.until((c) => c.events.length >= 6000);
    tail.close();
    const got = ids(tail.collector);
    expect(new Set(got).size).toBe(got.length);
    expect(got).toHaveLength(6000);
    expect(tail.collector.messages.filter((m) => m.live)).toHaveLength(1);
    // Commit order: received_at, then id within a batch (one tenant here).
    // As numbers: protobuf JSON drops a zero fraction ("…:35Z"), which sorts after "…:35.001Z" as text.
    const order = tail.collector.events.map((e) => [micros(e.receivedAt as string), e.id as string] as const);
    expect([...order].sort((x, y) => (x[0] === y[0] ? (x[1] < y[1] ? -1 : 1) : x[0] - y[0]))).toEqual(order);

    // Resuming from a cursor in the middle delivers exactly what came after it.
    const middle = tail.collector.messages.find((m) => (m.events?.length ?? 0) > 0 && got.indexOf(m.events!.at(-1)!.id as string) > 2500)!;
    const after = got.slice(got.indexOf(middle.events!.at(-1)!.id as string) + 1);
    const resumed = connectTail(clients, t.auditor, { filter: { sources: ["rp"] }, cursor: middle.cursor });
    await resumed.collector.until((c) => c.live);
    resumed.close();
    expect(ids(resumed.collector)).toEqual(after);
  });

  it("applies the same filter semantics live as SearchEvents does in SQL", async () => {
    const t = await tokens("tail-filters");
    const base = { sources: ["flt"] };
    const filters: MessageInitShape<typeof EventFilterSchema>[] = [
      { types: ["auth.login", "iam.role.granted"] },
      { actions: ["view", "DELETE"] },
      { outcomes: [Outcome.FAILURE] },
      { minSeverity: Severity.WARNING },
      { actorIds: ["user-3"], resourceType: "account" },
      { resourceIds: ["acct-4", "acct-5"] },
      { requestId: "req-7" },
      { attributes: { plan: "pro", region: "eu-west-1" } },
      { text: "NUMBER 1" },
      { startTime: timestampFromDate(new Date(Date.UTC(2026, 10, 1) + 100_000)), endTime: timestampFromDate(new Date(Date.UTC(2026, 10, 1) + 200_000)) },
      { types: ["order.viewed"], outcomes: [Outcome.SUCCESS], attributes: { plan: "free" }, text: "account 1" },
    ];
    const tails = filters.map((f) => connectTail(clients, t.auditor, { filter: { ...base, ...f } }));
    await Promise.all(tails.map((tail) => tail.collector.until((c) => c.live)));
    await appendAll(clients, t.writer, events(0, 300, { source: "flt" }), 100);
    for (const [i, f] of filters.entries()) {
      const label = JSON.stringify(f, (_, v) => (typeof v === "bigint" ? String(v) : v));
      const want = (await searchAllJson(clients, t.auditor, { ...base, ...f })).map((e) => e.id).sort();
      expect(want.length, label).toBeGreaterThan(0);
      await tails[i].collector.until((c) => c.events.length >= want.length);
      expect(ids(tails[i].collector).sort(), label).toEqual(want);
    }
    for (const tail of tails) tail.close();
  });

  it("refuses other tenants and callers without a reading role, like search", async () => {
    const t = await tokens("tail-deny");
    const denied = connectTail(clients, t.auditor, { filter: { tenantId: "tail-a" } });
    await expect(denied.collector.until(() => false)).rejects.toThrow(/only admins may read other tenants/);
    expect(ConnectError.from(denied.collector.ended!.error).code).toBe(Code.PermissionDenied);
    const writer = connectTail(clients, t.writer);
    await expect(writer.collector.until(() => false)).rejects.toThrow(/requires the role user or auditor or admin/);
    const badCursor = connectTail(clients, t.auditor, { cursor: "not-a-cursor" });
    await expect(badCursor.collector.until(() => false)).rejects.toThrow(/cursor is not valid/);
  });
});

describe("the /v1/tail WebSocket", () => {
  it.each(["protocol", "header"] as const)("streams live events as Connect JSON frames (token in the %s)", async (how) => {
    const t = await tokens(`ws-${how}`);
    const other = await tokens("ws-other");
    const tail = socketTail(server.baseUrl, t.auditor, "source=ws&type=auth.login", how);
    await tail.collector.until((c) => c.live);
    expect(tail.ws.protocol).toBe("auditlog.v1");
    await appendAll(clients, other.writer, events(0, 30, { source: "ws" }));
    await appendAll(clients, t.writer, events(0, 30, { source: "ws" }));
    const want = events(0, 30).filter((e) => e.type === "auth.login").length;
    await tail.collector.until((c) => c.events.length === want);
    expect(tail.collector.events.every((e) => e.tenantId === `ws-${how}` && e.type === "auth.login")).toBe(true);
    // Every frame parses as a TailEventsResponse.
    for (const m of tail.collector.messages) expect(toJson(TailEventsResponseSchema, fromJson(TailEventsResponseSchema, m))).toEqual(m);
    tail.ws.close();
    expect((await tail.closed).code).toBe(1005);
  });

  it("rejects a bad token before upgrading, and a forbidden read with an error frame and close 1008", async () => {
    const bad = socketTail(server.baseUrl, "not.a.jwt");
    const res = await bad.rejected;
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ code: "unauthenticated" });

    const typo = socketTail(server.baseUrl, (await tokens("ws-x")).auditor, "tpye=x");
    expect((await typo.rejected).status).toBe(400);
    // A name every object inherits is no field: refused before any event (its filter once threw on live events, closing every tail).
    const inherited = socketTail(server.baseUrl, (await tokens("ws-x")).auditor, "q=constructor:x");
    expect(await inherited.closed).toEqual({ code: 1008, reason: "invalid_argument" });
    expect(inherited.collector.messages.at(-1)!.error).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/unknown field "constructor"/) });

    const writer = socketTail(server.baseUrl, (await tokens("ws-x")).writer);
    const closed = await writer.closed;
    expect(closed).toEqual({ code: 1008, reason: "permission_denied" });
    expect(writer.collector.messages.at(-1)!.error).toMatchObject({ code: "permission_denied", message: expect.stringMatching(/auditor or admin/) });
  });

  it("a stalled reader never slows ingest: it gets a lag notice with the cursor to resume from, and loses nothing", async () => {
    const t = await tokens("ws-slow");
    const total = 20_000;
    const tail = socketTail(server.baseUrl, t.auditor, "source=slow");
    await tail.collector.until((c) => c.live);
    tail.ws.pause();
    // Far more than the subscriber queue (256 KiB) plus the socket buffers: all acknowledged while the reader is stalled.
    await appendAll(clients, t.writer, events(0, total, { source: "slow" }), 1000);
    tail.ws.resume();
    await tail.collector.until((c) => c.messages.some((m) => m.lag));
    const lagAt = tail.collector.messages.findIndex((m) => m.lag);
    const lag = tail.collector.messages[lagAt].lag!;
    const before = tail.collector.messages.slice(0, lagAt).flatMap((m) => m.events ?? []).map((e) => e.id as string);
    expect(Number(lag.skippedCount)).toBeGreaterThan(0);
    expect(before.length + Number(lag.skippedCount)).toBeLessThanOrEqual(total);
    expect(lag.resumeCursor).toBe([...tail.collector.messages.slice(0, lagAt)].reverse().find((m) => m.cursor)!.cursor);
    tail.ws.close();

    // The resume cursor replays exactly what the stalled reader missed, and what followed.
    const resumed = connectTail(clients, t.auditor, { filter: { sources: ["slow"] }, cursor: lag.resumeCursor });
    await resumed.collector.until((c) => c.live);
    resumed.close();
    const all = [...before, ...ids(resumed.collector)];
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
  });
});

describe("audited tails", () => {
  it("records who opened which tail, and how many events it delivered when it closed", async () => {
    const t = await tokens("tail-audit");
    const watcher = connectTail(clients, t.auditor, { filter: { types: ["auditlog.read.tail"] } });
    await watcher.collector.until((c) => c.live);
    const tail = connectTail(clients, t.auditor, { filter: { sources: ["aud"] } });
    await tail.collector.until((c) => c.live);
    await appendAll(clients, t.writer, events(0, 7, { source: "aud" }));
    await tail.collector.until((c) => c.events.length === 7);
    tail.close();
    const phase = (p: string) => (c: TailCollector) => c.events.some((e) => (e.attributes as any).phase === p && (e.attributes as any).filter.includes('"aud"'));
    await watcher.collector.until(phase("closed"));
    watcher.close();
    const [opened, closed] = ["opened", "closed"].map((p) => watcher.collector.events.find((e) => phase(p)({ events: [e] } as unknown as TailCollector))!);
    expect(opened).toMatchObject({
      tenantId: "tail-audit",
      type: "auditlog.read.tail",
      action: "VIEW",
      outcome: "OUTCOME_SUCCESS",
      actor: { id: "test-tail-audit", type: "principal", ip: "127.0.0.1" },
      source: "auditlog",
      attributes: { phase: "opened", scope: "tail-audit", filter: '{"sources":["aud"]}' },
    });
    expect(closed.attributes).toMatchObject({ phase: "closed", result_count: "7" });
  });
});

describe("shutdown", () => {
  it("ends a tail when its token stops being accepted, UNAUTHENTICATED with the cursor to resume from, over gRPC and the WebSocket", async () => {
    const t = await tokens("tail-expiry");
    // Past its exp by 15 s: accepted for about 15 s more (30 s of clock tolerance), then no longer.
    const expiring = await server.token("tail-expiry", ["auditor"], { ttlSeconds: -15 });
    const tail = connectTail(clients, expiring, { filter: { sources: ["expiry"] } });
    const socket = socketTail(server.baseUrl, expiring, "source=expiry");
    await tail.collector.until((c) => c.live);
    await socket.collector.until((c) => c.live);
    await appendAll(clients, t.writer, events(0, 3, { source: "expiry" }));
    await tail.collector.until((c) => c.events.length === 3);
    // Time passing is the subject here: the token runs out while the tail waits for events.
    await expect(tail.collector.until(() => false)).rejects.toThrow(/the token has expired; open the tail again with a new token and cursor "[^"]+" to miss nothing/);
    expect(ConnectError.from(tail.collector.ended!.error).code).toBe(Code.Unauthenticated);
    expect(await socket.closed).toEqual({ code: 1008, reason: "unauthenticated" });
    // The cursor it names resumes with a new token, missing nothing.
    const cursor = /cursor "([^"]+)"/.exec(String(tail.collector.ended!.error))![1];
    await appendAll(clients, t.writer, events(3, 2, { source: "expiry" }));
    const resumed = connectTail(clients, t.auditor, { filter: { sources: ["expiry"] }, cursor });
    await resumed.collector.until((c) => c.events.length === 2);
    expect(ids(resumed.collector)).toEqual(["expiry-3", "expiry-4"]);
    resumed.close();
  });

  it("SIGTERM ends open tails with UNAVAILABLE and the cursor to resume from", async () => {
    const t = await tokens("tail-stop");
    const tail = connectTail(clients, t.auditor, { filter: { sources: ["stop"] } });
    await tail.collector.until((c) => c.live);
    const socket = socketTail(server.baseUrl, t.auditor, "source=stop");
    await socket.collector.until((c) => c.live);
    stopped = true;
    expect(await server.stop()).toBe(0);
    await expect(tail.collector.until(() => false)).rejects.toThrow(/shutting down; resume .* with cursor "/);
    expect(ConnectError.from(tail.collector.ended!.error).code).toBe(Code.Unavailable);
    expect(await socket.closed).toEqual({ code: 1001, reason: "unavailable" });
  });
});
