/**
 * Tenant isolation on every surface. Tenants A and B hold events that share
 * a type, a request id, a session id and even an event id; B's carry secrets
 * (a type, an attribute key, message text) that must never reach a tenant-A
 * token, whatever it asks and however. Naming tenant B is PERMISSION_DENIED;
 * not naming it shows A's events only; B's event ids are as unknown to A as
 * ids that do not exist; A's writes never land in B. At the end, B's events
 * are exactly as they were and B's log holds no trace of A's attempts.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { parse as parseCsv } from "csv-parse/sync";
import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExportFormat, StatsDimension } from "../../gen/auditlog/v1/query_pb.js";
import { searchAllJson } from "../helpers/bulk.ts";
import { bearer, connectClients, grpcJsIngestClient } from "../helpers/clients.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail, socketTail } from "../helpers/tail.ts";
import { callJson, Code, expectConnectError, failureOf, get, RPC } from "./support.ts";

const A = "xt-tenant-a";
const B = "xt-tenant-b";
const SOURCE = "xt-seed";
const B_SECRET = "B-SECRET-7f3a";
const B_ONLY_TYPE = "secret.b.only.type";
const B_ONLY_KEY = "b_secret_key";
const A_SUBJECTS = ["alice-a", "svc-a", "both-a", "user-a"];

let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let grpcClients: ReturnType<typeof connectClients>;
const tokens = {} as Record<"auditorA" | "writerA" | "bothA" | "userA" | "auditorB" | "writerB" | "admin", string>;
let seededAt: Date;
/** Tenant B's seeded events as SearchEvents returned them right after seeding. */
let bBefore: JsonObject[];

const at = (i: number) => new Date(Date.now() - 3_600_000 + i * 1000).toISOString();
const event = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: "shared.type",
  action: "VIEW",
  actor: { id: "alice-a" },
  source: SOURCE,
  ...extra,
});

const A_EVENTS = [
  event("a-1", { time: at(1), requestId: "req-shared", actor: { id: "user-a", sessionId: "sess-shared" }, attributes: { plan: "a" } }),
  event("a-2", { time: at(2), requestId: "req-shared", actor: { id: "alice-a", sessionId: "sess-shared" }, message: "tenant A event" }),
  event("a-3", { time: at(3), type: "a.only.type" }),
  event("shared-id", { time: at(4), message: "A's own copy" }),
];
const B_EVENTS = [
  event("b-1", { time: at(5), requestId: "req-shared", actor: { id: "user-a", sessionId: "sess-shared" }, message: `${B_SECRET} message`, attributes: { [B_ONLY_KEY]: B_SECRET, plan: "b" } }),
  event("b-2", { time: at(6), type: B_ONLY_TYPE, requestId: "req-shared", actor: { id: "alice-a" }, message: `${B_SECRET} type` }),
  event("b-3", { time: at(7), attributes: { [B_ONLY_KEY]: B_SECRET } }),
  event("b-dup", { time: at(8), message: `${B_SECRET} dup` }),
  event("shared-id", { time: at(9), message: `${B_SECRET} copy` }),
];
const A_IDS = A_EVENTS.map((e) => e.id).sort();

/**
 * Asserts that a text (an answer, an export) holds nothing that only tenant B
 * has. A refusal may quote what the caller sent (`sent`, e.g. the tenant it
 * named): that is cut out first.
 */
function expectNothingOfB(text: string, label = "", sent: string[] = []): void {
  for (const s of sent) text = text.split(s).join("");
  for (const secret of [B_SECRET, B_ONLY_TYPE, B_ONLY_KEY, B, "b-1", "b-2", "b-3", "b-dup"]) {
    expect(text.includes(secret), `${label}: ${JSON.stringify(secret)} leaked: ${text.slice(0, 300)}`).toBe(false);
  }
}

/** Runs a server stream to its end and returns what it failed with. */
const streamFailure = (stream: () => AsyncIterable<unknown>) =>
  failureOf(async () => {
    for await (const _ of stream());
  });

beforeAll(async () => {
  server = await startServer();
  clients = connectClients(server.baseUrl, "connect-json");
  grpcClients = connectClients(server.baseUrl, "grpc");
  Object.assign(tokens, {
    auditorA: await server.token(A, ["auditor"], { subject: "alice-a" }),
    writerA: await server.token(A, ["writer"], { subject: "svc-a" }),
    bothA: await server.token(A, ["writer", "auditor"], { subject: "both-a" }),
    userA: await server.token(A, ["user"], { subject: "user-a" }),
    auditorB: await server.token(B, ["auditor"], { subject: "bob-b" }),
    writerB: await server.token(B, ["writer"], { subject: "svc-b" }),
    admin: await server.token("", ["admin"], { subject: "root" }),
  });
  seededAt = new Date();
  for (const [token, events] of [
    [tokens.writerA, A_EVENTS],
    [tokens.writerB, B_EVENTS],
  ] as const) {
    const res = await callJson(server.baseUrl, RPC.append, { events }, token);
    expect(res.json?.acceptedCount, res.text).toBe(String(events.length));
  }
  bBefore = await searchAllJson(clients, tokens.auditorB, { sources: [SOURCE] });
  expect(bBefore.map((e) => e.id).sort()).toEqual(B_EVENTS.map((e) => e.id).sort());
});
afterAll(async () => {
  await server.stop();
  removeDataDir(server.dataDir);
});

describe("SearchEvents", () => {
  it("is PERMISSION_DENIED for a tenant-A token naming tenant B, over Connect JSON and gRPC, for auditor, writer+auditor and user roles", async () => {
    for (const token of [tokens.auditorA, tokens.bothA, tokens.userA]) {
      const res = await callJson(server.baseUrl, RPC.search, { filter: { tenantId: B } }, token);
      expectConnectError(res, "permission_denied");
      expect(res.json.message).toMatch(/only admins may read other tenants/);
      expectNothingOfB(res.text, "search", [B]);
      const err = await failureOf(grpcClients.query.searchEvents({ filter: { tenantId: B } }, bearer(token)));
      expect(err.code).toBe(Code.PermissionDenied);
    }
  });

  it("without a tenant, returns exactly tenant A's events, even for filters only B's events match", async () => {
    for (const token of [tokens.auditorA, tokens.bothA]) {
      expect((await searchAllJson(clients, token, { sources: [SOURCE] })).map((e) => e.id).sort()).toEqual(A_IDS);
      expect((await searchAllJson(grpcClients, token, { sources: [SOURCE] })).map((e) => e.id).sort()).toEqual(A_IDS);
      // (A's own audit events quote A's earlier filters, B's secrets included: only the seeded events are asked for.)
      const bOnly = [{ types: [B_ONLY_TYPE] }, { attributes: { [B_ONLY_KEY]: B_SECRET } }, { text: B_SECRET }, { query: `id:b-1 OR id:b-dup OR "${B_SECRET}"` }];
      for (const filter of bOnly) expect(await searchAllJson(clients, token, { ...filter, sources: [SOURCE] }), JSON.stringify(filter)).toEqual([]);
      const shared = await searchAllJson(clients, token, { query: "id:shared-id OR id:b-1 OR id:a-1" });
      expect(shared.map((e) => [e.id, e.tenantId, e.message ?? ""]).sort()).toEqual([
        ["a-1", A, ""],
        ["shared-id", A, "A's own copy"],
      ]);
    }
  });

  it("a user token of tenant A sees only its own events of tenant A", async () => {
    const own = await searchAllJson(clients, tokens.userA, { sources: [SOURCE] });
    expect(own.map((e) => [e.id, e.tenantId])).toEqual([["a-1", A]]);
  });

  it("refuses a page token tenant B was given, instead of paging through B", async () => {
    const first = await callJson(server.baseUrl, RPC.search, { filter: { sources: [SOURCE] }, pageSize: 1 }, tokens.auditorB);
    expect(first.json.nextPageToken).toBeTruthy();
    const reused = await callJson(server.baseUrl, RPC.search, { filter: { sources: [SOURCE] }, pageSize: 1, pageToken: first.json.nextPageToken }, tokens.auditorA);
    expectConnectError(reused, "invalid_argument");
    expectNothingOfB(reused.text);
  });
});

describe("GetEvent", () => {
  it("answers NOT_FOUND for B's event id exactly as for an id that exists nowhere, so existence does not leak", async () => {
    const ofB = await callJson(server.baseUrl, RPC.get, { id: "b-dup" }, tokens.auditorA);
    const nowhere = await callJson(server.baseUrl, RPC.get, { id: "n-dup" }, tokens.auditorA);
    expectConnectError(ofB, "not_found");
    expectConnectError(nowhere, "not_found");
    expect(ofB.json.message.replace("b-dup", "ID")).toBe(nowhere.json.message.replace("n-dup", "ID"));
    expectNothingOfB(ofB.json.message.replace("b-dup", "ID"));
    for (const [id, other] of [["b-dup", "n-dup"]]) {
      const e1 = await failureOf(grpcClients.query.getEvent({ id }, bearer(tokens.auditorA)));
      const e2 = await failureOf(grpcClients.query.getEvent({ id: other }, bearer(tokens.auditorA)));
      expect([e1.code, e2.code]).toEqual([Code.NotFound, Code.NotFound]);
      expect(e1.rawMessage.replace(id, "ID")).toBe(e2.rawMessage.replace(other, "ID"));
    }
  });

  it("is PERMISSION_DENIED when naming tenant B, and returns A's own copy of an id both tenants use", async () => {
    const named = await callJson(server.baseUrl, RPC.get, { id: "b-1", tenantId: B }, tokens.auditorA);
    expectConnectError(named, "permission_denied");
    expectNothingOfB(named.text, "get", [B]);
    const both = await clients.query.getEvent({ id: "shared-id" }, bearer(tokens.auditorA));
    expect([both.event?.tenantId, both.event?.message]).toEqual([A, "A's own copy"]);
  });
});

describe("GetStats", () => {
  it("is PERMISSION_DENIED when naming tenant B", async () => {
    const res = await callJson(server.baseUrl, RPC.stats, { filter: { tenantId: B } }, tokens.auditorA);
    expectConnectError(res, "permission_denied");
    const err = await failureOf(grpcClients.query.getStats({ filter: { tenantId: B } }, bearer(tokens.auditorA)));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it("counts only tenant A's events, from the rollup and from the events", async () => {
    const byRollup = await clients.query.getStats({ filter: { sources: [SOURCE] }, groupBy: [StatsDimension.TYPE] }, bearer(tokens.auditorA));
    const byScan = await clients.query.getStats({ filter: { sources: [SOURCE], actorIds: ["alice-a", "user-a"] }, groupBy: [StatsDimension.TYPE, StatsDimension.ACTOR] }, bearer(tokens.auditorA));
    expect(byRollup.fromRollup).toBe(true);
    expect(byScan.fromRollup).toBe(false);
    expect(Number(byRollup.total)).toBe(A_EVENTS.length);
    expect(Number(byScan.total)).toBe(A_EVENTS.length);
    expect(byRollup.rows.map((r) => [r.keys.join("/"), Number(r.count)]).sort()).toEqual([
      ["a.only.type", 1],
      ["shared.type", 3],
    ]);
    expectNothingOfB(JSON.stringify(byScan.rows.map((r) => r.keys)));
  });
});

describe("ListEventTypes", () => {
  it("is PERMISSION_DENIED when naming tenant B", async () => {
    expectConnectError(await callJson(server.baseUrl, RPC.types, { tenantId: B }, tokens.auditorA), "permission_denied");
  });

  it("lists A's types only, with A's counts and A's attribute keys: B's type and B's attribute key never appear", async () => {
    const res = await callJson(server.baseUrl, RPC.types, {}, tokens.auditorA);
    expect(res.status).toBe(200);
    expectNothingOfB(res.text);
    const types = Object.fromEntries(res.json.types.map((t: any) => [t.type, t]));
    expect(types["a.only.type"].count).toBe("1");
    expect(types["shared.type"].count).toBe("3");
    expect(types["shared.type"].attributeKeys).toEqual(["plan"]);
    expect(types[B_ONLY_TYPE]).toBeUndefined();
  });
});

describe("GetTimeline", () => {
  it("returns only A's events of a request id and of a session id that B's events share", async () => {
    const byRequest = await clients.query.getTimeline({ requestId: "req-shared" }, bearer(tokens.auditorA));
    expect(byRequest.events.map((e) => [e.id, e.tenantId])).toEqual([
      ["a-1", A],
      ["a-2", A],
    ]);
    const bySession = await grpcClients.query.getTimeline({ sessionId: "sess-shared" }, bearer(tokens.auditorA));
    expect(bySession.events.map((e) => e.id)).toEqual(["a-1", "a-2"]);
  });

  it("is PERMISSION_DENIED when naming tenant B", async () => {
    const res = await callJson(server.baseUrl, RPC.timeline, { requestId: "req-shared", tenantId: B }, tokens.auditorA);
    expectConnectError(res, "permission_denied");
    expectNothingOfB(res.text, "timeline", [B]);
  });
});

describe("ExportEvents and GET /v1/export", () => {
  const exportRpc = async (client: typeof clients, filter: Record<string, unknown>, format: ExportFormat, token = tokens.auditorA) => {
    const chunks: Uint8Array[] = [];
    for await (const msg of client.query.exportEvents({ filter, format }, bearer(token))) chunks.push(msg.data);
    return Buffer.concat(chunks).toString("utf8");
  };

  it("the RPC is PERMISSION_DENIED when naming tenant B, before any byte", async () => {
    for (const client of [clients, grpcClients]) {
      const err = await streamFailure(() => client.query.exportEvents({ filter: { tenantId: B } }, bearer(tokens.auditorA)));
      expect(err.code).toBe(Code.PermissionDenied);
    }
  });

  it("the RPC exports only A's events, as NDJSON and as CSV (whose attribute columns come from A's keys only)", async () => {
    const ndjson = await exportRpc(grpcClients, { sources: [SOURCE] }, ExportFormat.NDJSON);
    expectNothingOfB(ndjson, "ndjson");
    const lines = ndjson.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((e) => e.id).sort()).toEqual(A_IDS);
    const csv = await exportRpc(clients, { sources: [SOURCE] }, ExportFormat.CSV);
    expectNothingOfB(csv, "csv");
    const rows: Record<string, string>[] = parseCsv(csv, { columns: true });
    expect(rows.map((r) => r.id).sort()).toEqual(A_IDS);
    expect(Object.keys(rows[0]).filter((k) => k.startsWith("attributes."))).toEqual(["attributes.plan"]);
  });

  it("the download is PERMISSION_DENIED for tenant_id=B, in every format", async () => {
    for (const format of ["ndjson", "csv", "parquet"]) {
      const res = await get(server.baseUrl, `/v1/export?format=${format}&tenant_id=${B}`, tokens.auditorA);
      expectConnectError(res, "permission_denied", format);
      expectNothingOfB(res.text, format, [B]);
    }
  });

  it("the download holds only A's events, in every format", async () => {
    const ndjson = await get(server.baseUrl, `/v1/export?source=${SOURCE}`, tokens.auditorA);
    expect(ndjson.status).toBe(200);
    expectNothingOfB(ndjson.text, "ndjson");
    expect(ndjson.text.trim().split("\n").map((l) => JSON.parse(l).id).sort()).toEqual(A_IDS);
    const csv = await get(server.baseUrl, `/v1/export?format=csv&source=${SOURCE}`, tokens.auditorA);
    expectNothingOfB(csv.text, "csv");
    const res = await fetch(`${server.baseUrl}/v1/export?format=parquet&source=${SOURCE}`, { headers: { authorization: `Bearer ${tokens.auditorA}` } });
    expect(res.status).toBe(200);
    const rows: any[] = await parquetReadObjects({ file: await res.arrayBuffer(), compressors });
    expect(rows.map((r) => [r.id, r.tenant_id]).sort()).toEqual(A_IDS.map((id) => [id, A]));
    expectNothingOfB(JSON.stringify(rows, (_, v) => (typeof v === "bigint" ? String(v) : v)), "parquet");
  });
});

describe("TailEvents and the /v1/tail WebSocket", () => {
  it("are PERMISSION_DENIED when naming tenant B (the RPC with the code, the socket with an error frame and close 1008)", async () => {
    const denied = connectTail(grpcClients, tokens.auditorA, { filter: { tenantId: B } });
    await expect(denied.collector.until(() => false)).rejects.toThrow(/only admins may read other tenants/);
    const socket = socketTail(server.baseUrl, tokens.auditorA, `tenant_id=${B}`);
    expect(await socket.closed).toEqual({ code: 1008, reason: "permission_denied" });
    expect(socket.collector.messages.at(-1)?.error).toMatchObject({ code: "permission_denied" });
    expect(socket.collector.events).toEqual([]);
  });

  it("deliver live only A's events while both tenants write", async () => {
    const filter = { sources: ["xt-live"] };
    const rpc = connectTail(grpcClients, tokens.auditorA, { filter });
    const socket = socketTail(server.baseUrl, tokens.auditorA, "source=xt-live");
    await Promise.all([rpc.collector.until((c) => c.live), socket.collector.until((c) => c.live)]);
    const live = (id: string) => event(id, { source: "xt-live", message: id.startsWith("b") ? B_SECRET : "a" });
    await clients.ingest.append({ events: [live("b-live-1"), live("b-live-2")] }, bearer(tokens.writerB));
    await clients.ingest.append({ events: [live("a-live-1")] }, bearer(tokens.writerA));
    await clients.ingest.append({ events: [live("b-live-3")] }, bearer(tokens.writerB));
    // The last event is A's: once it arrives, every event committed before it has been seen or skipped.
    await clients.ingest.append({ events: [live("a-live-last")] }, bearer(tokens.writerA));
    await Promise.all([rpc.collector.until((c) => c.events.some((e) => e.id === "a-live-last")), socket.collector.until((c) => c.events.some((e) => e.id === "a-live-last"))]);
    rpc.close();
    socket.ws.close();
    for (const c of [rpc.collector, socket.collector]) {
      expect(c.events.map((e) => [e.id, e.tenantId])).toEqual([
        ["a-live-1", A],
        ["a-live-last", A],
      ]);
      expectNothingOfB(JSON.stringify(c.messages));
    }
  });

  it("replay only A's events from a time before both tenants wrote", async () => {
    const since = seededAt.toISOString();
    const rpc = connectTail(grpcClients, tokens.auditorA, { filter: { sources: [SOURCE] }, since: { seconds: BigInt(Math.floor(seededAt.getTime() / 1000)), nanos: 0 } });
    const socket = socketTail(server.baseUrl, tokens.auditorA, `source=${SOURCE}&since=${encodeURIComponent(since.replace(/\.\d+Z$/, "Z"))}`);
    await Promise.all([rpc.collector.until((c) => c.live), socket.collector.until((c) => c.live)]);
    rpc.close();
    socket.ws.close();
    for (const c of [rpc.collector, socket.collector]) {
      expect(c.events.map((e) => e.id).sort()).toEqual(A_IDS);
      expectNothingOfB(JSON.stringify(c.messages));
    }
  });
});

describe("IntegrityService", () => {
  it("VerifyChain and GetCheckpoint are PERMISSION_DENIED for tenant B", async () => {
    expectConnectError(await callJson(server.baseUrl, RPC.verify, { tenantId: B }, tokens.auditorA), "permission_denied");
    expectConnectError(await callJson(server.baseUrl, RPC.checkpoint, { tenantId: B }, tokens.auditorA), "permission_denied");
    expect((await failureOf(grpcClients.integrity.verifyChain({ tenantId: B }, bearer(tokens.auditorA)))).code).toBe(Code.PermissionDenied);
    expect((await failureOf(grpcClients.integrity.getCheckpoint({ tenantId: B }, bearer(tokens.auditorA)))).code).toBe(Code.PermissionDenied);
  });

  it("without a tenant, verify and report only A's chains and checkpoints", async () => {
    const verified = await clients.integrity.verifyChain({}, bearer(tokens.auditorA));
    expect(verified.chains.length).toBeGreaterThan(0);
    expect(verified.chains.map((c) => c.tenantId)).toEqual(verified.chains.map(() => A));
    expect(verified.ok).toBe(true);
    const checkpoints = await grpcClients.integrity.getCheckpoint({}, bearer(tokens.auditorA));
    expect(checkpoints.checkpoints.length).toBeGreaterThan(0);
    expect(checkpoints.checkpoints.map((c) => c.tenantId)).toEqual(checkpoints.checkpoints.map(() => A));
    // Naming B's chain id (chains are per instance, so it is A's too) still reads A's chain only.
    const bChains = await clients.integrity.getCheckpoint({ tenantId: B }, bearer(tokens.auditorB));
    const sameChain = await clients.integrity.verifyChain({ chainId: bChains.checkpoints[0].chainId }, bearer(tokens.auditorA));
    expect(sameChain.chains.map((c) => c.tenantId)).toEqual([A]);
  });
});

describe("the write surface", () => {
  it("a tenant-A writer's event addressed to tenant B is rejected alone (permission_denied); its neighbour is stored in A", async () => {
    for (const [client, token, suffix] of [
      [clients, tokens.writerA, "json"],
      [grpcClients, tokens.bothA, "grpc"],
    ] as const) {
      const res = await client.ingest.append(
        { events: [{ ...event(`into-b-${suffix}`, { source: "xt-write" }), tenantId: B } as never, event(`own-${suffix}`, { source: "xt-write" }) as never] },
        bearer(token),
      );
      expect(res.acceptedCount).toBe(1n);
      expect(res.rejections).toEqual([expect.objectContaining({ index: 0n, field: "tenant_id", code: "permission_denied" })]);
      expect(res.ids).toEqual(["", `own-${suffix}`]);
    }
  });

  it("the same over a gRPC Ingest stream from an independent client (@grpc/grpc-js)", async () => {
    const client = grpcJsIngestClient(server.port);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${tokens.writerA}`);
    const res = await new Promise<any>((resolve, reject) => {
      const call = client.Ingest(md, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r)));
      call.write({ events: [event("stream-own-1", { source: "xt-write" })] });
      call.write({ events: [{ ...event("stream-into-b", { source: "xt-write" }), tenantId: B }] });
      call.end();
    });
    client.close();
    expect(res.acceptedCount).toBe("1");
    expect(res.rejections).toEqual([expect.objectContaining({ index: "1", field: "tenant_id", code: "permission_denied" })]);
  });

  it("an event id that tenant B uses is a new event in A: no duplicate reported (no existence oracle), B's event untouched", async () => {
    const res = await clients.ingest.append({ events: [event("b-dup", { source: "xt-write", message: "A wrote this" }) as never] }, bearer(tokens.writerA));
    expect([res.acceptedCount, res.duplicateCount]).toEqual([1n, 0n]);
    const inA = await clients.query.getEvent({ id: "b-dup" }, bearer(tokens.auditorA));
    expect([inA.event?.tenantId, inA.event?.message]).toEqual([A, "A wrote this"]);
    const inB = await clients.query.getEvent({ id: "b-dup" }, bearer(tokens.auditorB));
    expect([inB.event?.tenantId, inB.event?.message]).toEqual([B, `${B_SECRET} dup`]);
  });

  it("roles hold: an auditor of A cannot append, a writer of A cannot read", async () => {
    expectConnectError(await callJson(server.baseUrl, RPC.append, { events: [event("by-auditor")] }, tokens.auditorA), "permission_denied");
    for (const [path, body] of [
      [RPC.search, {}],
      [RPC.get, { id: "b-1" }],
      [RPC.stats, {}],
      [RPC.types, {}],
      [RPC.timeline, { requestId: "req-shared" }],
      [RPC.verify, {}],
      [RPC.checkpoint, {}],
    ] as const) {
      const res = await callJson(server.baseUrl, path, body, tokens.writerA);
      expectConnectError(res, "permission_denied", path);
      expectNothingOfB(res.text, path);
    }
    expectConnectError(await get(server.baseUrl, "/v1/export", tokens.writerA), "permission_denied");
  });
});

describe("afterwards", () => {
  it("tenant B's events are exactly as they were, nothing A sent is in B, and A's attempts are recorded in A's log, not B's", async () => {
    // Every read records an audit event; they commit in order. Wait for one
    // more read of A to be committed: every earlier audit event is too.
    const sentinel = connectTail(clients, tokens.auditorA, { filter: { requestId: "xt-sentinel" } });
    await sentinel.collector.until((c) => c.live);
    await callJson(server.baseUrl, RPC.search, { filter: { tenantId: B } }, tokens.auditorA, { "x-request-id": "xt-sentinel" });
    await sentinel.collector.until((c) => c.events.length > 0);
    sentinel.close();
    expect(sentinel.collector.events[0]).toMatchObject({ tenantId: A, type: "auditlog.read.search", outcome: "OUTCOME_FAILURE" });

    const bAfter = await searchAllJson(clients, tokens.auditorB, { sources: [SOURCE] });
    expect(bAfter).toEqual(bBefore);
    const bEverything = await searchAllJson(clients, tokens.admin, { tenantId: B });
    expect(bEverything.filter((e) => (e.source as string) !== "auditlog").map((e) => e.id).sort()).toEqual(
      [...B_EVENTS.map((e) => e.id), "b-live-1", "b-live-2", "b-live-3"].sort(),
    );
    const tracesInB = await searchAllJson(clients, tokens.admin, { tenantId: B, sources: ["auditlog"], actorIds: A_SUBJECTS });
    expect(tracesInB).toEqual([]);
    const tracesInA = await searchAllJson(clients, tokens.admin, { tenantId: A, sources: ["auditlog"], actorIds: A_SUBJECTS });
    expect(tracesInA.filter((e) => (e.attributes as Record<string, string>)?.error?.startsWith("permission_denied")).length).toBeGreaterThan(10);
    const chains = await clients.integrity.verifyChain({ tenantId: B }, bearer(tokens.admin));
    expect(chains.ok).toBe(true);
  });
});
