import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventSchema, type Severity } from "../../gen/auditlog/v1/event_pb.js";
import { AppendRequestSchema, AppendResponseSchema, IngestResponseSchema } from "../../gen/auditlog/v1/ingest_pb.js";
import { bearer, connectClients, grpcJsIngestClient, postJson } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";

let server: TestServer;
let writer: string;
let auditor: string;

beforeAll(async () => {
  server = await startServer({ env: { AUDITLOG_MAX_EVENTS_PER_REQUEST: "100", AUDITLOG_QUEUE_MAX_EVENTS: "1000", AUDITLOG_MAX_REQUEST_BYTES: "262144" } });
  writer = await server.token("acme", ["writer"]);
  auditor = await server.token("acme", ["auditor"]);
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

const append = (body: unknown) => postJson(server.baseUrl, "auditlog.v1.IngestService/Append", body, writer);
const search = (body: unknown) => postJson(server.baseUrl, "auditlog.v1.QueryService/SearchEvents", body, auditor);
const valid = (id: string) => ({ id, type: "test.valid", action: "CREATE", actor: { id: "u-1" }, attributes: { batch: "bad-input" } });

/** One gRPC call written by hand over HTTP/2: the answer's body and status (in the trailers, or the headers of a trailers-only answer). */
async function rawGrpc(path: string, frames: Buffer): Promise<{ body: Buffer; code: string; message: string }> {
  const session = http2.connect(server.baseUrl);
  const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", authorization: `Bearer ${writer}` });
  stream.end(frames);
  const answer = await new Promise<{ body: Buffer; code: string; message: string }>((resolve) => {
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (headers = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("close", () => {
      const source = trailers["grpc-status"] !== undefined ? trailers : headers;
      resolve({ body: Buffer.concat(chunks), code: String(source["grpc-status"]), message: String(source["grpc-message"]) });
    });
  });
  session.close();
  return answer;
}

async function storedIds(): Promise<string[]> {
  const res = await search({ filter: { attributes: { batch: "bad-input" } }, pageSize: 1000 });
  return (res.json.events ?? []).map((e: { id: string }) => e.id).sort();
}

describe("malformed requests are refused whole with INVALID_ARGUMENT", () => {
  it("rejects JSON that does not parse", async () => {
    const res = await append('{"events": [ {"type": "x", ');
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("invalid_argument");
    expect(res.json.message).toMatch(/JSON|json/);
  });

  it("rejects a field of the wrong type and names it", async () => {
    const res = await append({ events: [{ ...valid("wt"), attributes: { n: 5 } }] });
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/attributes/);
    const res2 = await append({ events: [{ ...valid("wt2"), outcome: "MAYBE" }] });
    expect(res2.status).toBe(400);
    expect(res2.json.message).toMatch(/outcome/i);
  });

  it("rejects text with an unpaired UTF-16 surrogate, so nothing stored can fail to verify", async () => {
    // JSON's \ud800 escape is the one way to send a lone surrogate (UTF-8 cannot
    // encode one). Stored, it would become U+FFFD in ClickHouse and the event
    // would no longer match its hash; protobuf-es refuses it while decoding.
    const res = await append({ events: [valid("sur-0"), { ...valid("sur-1"), message: "card \ud800 declined" }] });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("invalid_argument");
    expect(res.json.message).toMatch(/auditlog\.v1\.Event\.message.*invalid UTF8/);
    expect(await storedIds()).not.toContain("sur-0");
    const admin = await server.token("acme", ["admin"]);
    const verified = await postJson(server.baseUrl, "auditlog.v1.IntegrityService/VerifyChain", { tenantId: "acme" }, admin);
    expect(verified.json.ok).toBe(true);
  });

  it("rejects unknown fields instead of silently dropping them", async () => {
    const res = await append({ events: [{ ...valid("uf"), atributes: { a: "b" } }] });
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/atributes/);
  });

  it("rejects a body that is not protobuf", async () => {
    const res = await fetch(`${server.baseUrl}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${writer}` },
      body: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe("invalid_argument");
  });

  it("rejects a gRPC-Web message that is not protobuf with INVALID_ARGUMENT in the trailer", async () => {
    const garbage = new Uint8Array([0, 0, 0, 0, 3, 0x0a, 0xff, 0xff]);
    const res = await fetch(`${server.baseUrl}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${writer}` },
      body: garbage,
    });
    const text = new TextDecoder().decode(new Uint8Array(await res.arrayBuffer()));
    expect(text).toContain("grpc-status: 3");
    expect(decodeURIComponent(text)).toContain("not a valid protobuf message");
  });

  it("rejects a gRPC message that is not protobuf with INVALID_ARGUMENT", async () => {
    const status = await rawGrpc("/auditlog.v1.IngestService/Append", Buffer.from([0, 0, 0, 0, 3, 0x0a, 0xff, 0xff]));
    expect(status.code).toBe("3");
    expect(decodeURIComponent(status.message)).toContain("not a valid protobuf message");
  });

  it("rejects a request with more events than allowed and says the limit", async () => {
    const res = await append({ events: Array.from({ length: 101 }, (_, i) => valid(`many-${i}`)) });
    expect(res.status).toBe(400);
    expect(res.json.message).toContain("at most 100 events");
  });

  // gRPC-Web is checked with fetch: connect-node's own HTTP/1.1 gRPC-Web
  // client sometimes reports an early refusal as INTERNAL on a loaded machine
  // (README, "Known shortcuts").
  it("rejects a gRPC-Web body over the size limit with RESOURCE_EXHAUSTED in the trailer", async () => {
    const { toBinary, create } = await import("@bufbuild/protobuf");
    const { AppendRequestSchema } = await import("../../gen/auditlog/v1/ingest_pb.js");
    const big = Array.from({ length: 60 }, (_, i) => sampleEvent(i, { message: "x".repeat(5000) }));
    const message = toBinary(AppendRequestSchema, create(AppendRequestSchema, { events: big }));
    const body = new Uint8Array(5 + message.byteLength);
    new DataView(body.buffer).setUint32(1, message.byteLength);
    body.set(message, 5);
    const res = await fetch(`${server.baseUrl}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${writer}` },
      body,
    });
    const text = new TextDecoder().decode(new Uint8Array(await res.arrayBuffer()));
    expect(text).toContain("grpc-status: 8");
  });

  it.each(["connect-binary", "connect-json", "grpc", "grpc-web"] as const)(
    "rejects a body over the size limit with RESOURCE_EXHAUSTED over %s",
    async (protocol) => {
      const { ingest } = connectClients(server.baseUrl, protocol);
      const big = Array.from({ length: 60 }, (_, i) => sampleEvent(i, { message: "x".repeat(5000) }));
      const err = await ingest.append({ events: big }, bearer(writer)).catch((e) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe(Code.ResourceExhausted);
    },
  );

  it("rejects a malformed page token and a token used with another filter", async () => {
    const bad = await search({ pageToken: "definitely-not-a-token" });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toContain("page_token is not valid");

    await append({ events: [valid("pt-1"), valid("pt-2")] });
    const first = await search({ filter: { attributes: { batch: "bad-input" } }, pageSize: 1 });
    expect(first.json.nextPageToken).toBeTruthy();
    const other = await search({ filter: { types: ["other"] }, pageSize: 1, pageToken: first.json.nextPageToken });
    expect(other.status).toBe(400);
    expect(other.json.message).toContain("different filter");
  });

  it("rejects bad filters and page sizes with what to fix", async () => {
    const sizes = await search({ pageSize: 5000 });
    expect(sizes.json.message).toContain("page_size must be within 1..1000");
    const range = await search({ filter: { startTime: "2026-01-02T00:00:00Z", endTime: "2026-01-01T00:00:00Z" } });
    expect(range.json.message).toContain("start_time must be before");
    const far = await search({ filter: { endTime: "3000-01-01T00:00:00Z" } });
    expect(far.json).toEqual({ code: "invalid_argument", message: "filter.end_time must be a valid time between 1900-01-01 and 2255-01-01" });
    // Past 2^53 µs (2255-06-05) chDB refuses to bind a time: such times were INTERNAL before they were refused here.
    for (const filter of [{ endTime: "2260-01-01T00:00:00Z" }, { query: "until:2260-01-01" }, { query: "since:20000w" }, { query: "attr.amount:>10000000000000000" }]) {
      const res = await search({ filter });
      expect(res.status, JSON.stringify(filter)).not.toBe(500);
    }
    expect((await search({ filter: { query: "until:2260-01-01" } })).json).toEqual({
      code: "invalid_argument",
      message: 'query: "2260-01-01" is outside the times the store holds (between 1900-01-01 and 2255-01-01) at position 7',
    });
    // A big number is a number: the search runs (no attribute that large here).
    const big = await search({ filter: { query: "attr.amount:>10000000000000000" } });
    expect([big.status, big.json.events ?? []]).toEqual([200, []]);
    const missing = await postJson(server.baseUrl, "auditlog.v1.QueryService/GetEvent", {}, auditor);
    expect(missing.json).toEqual({ code: "invalid_argument", message: "id is required" });
    // Longer than any stored id: refused before it reaches the store (a server takes parameters in the URL).
    const long = await postJson(server.baseUrl, "auditlog.v1.QueryService/GetEvent", { id: "x".repeat(300) }, auditor);
    expect(long.json).toEqual({ code: "invalid_argument", message: "id is longer than 256 bytes; no stored value is" });
    const timeline = await postJson(server.baseUrl, "auditlog.v1.QueryService/GetTimeline", { requestId: "r".repeat(100_000) }, auditor);
    expect(timeline.json).toEqual({ code: "invalid_argument", message: "request_id is longer than 256 bytes; no stored value is" });
  });

  it("refuses a binary filter whose time JSON cannot express (negative nanos), with or without a page token", async () => {
    // Found by the fuzz test: such a filter reached the page token's hash (a JSON encoding) and failed as INTERNAL.
    const { query } = connectClients(server.baseUrl, "connect-binary");
    const first = await query.searchEvents({ filter: { attributes: { batch: "bad-input" } }, pageSize: 1 }, bearer(auditor));
    expect(first.nextPageToken).toBeTruthy();
    for (const pageToken of ["", first.nextPageToken]) {
      await expect(query.searchEvents({ filter: { startTime: { seconds: 1_700_000_000n, nanos: -1 } }, pageToken }, bearer(auditor))).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: "filter.start_time must be a valid time between 1900-01-01 and 2255-01-01",
      });
    }
  });
});

describe("invalid events are rejected one by one; their neighbours are stored", () => {
  it("reports each bad event's index, field and reason", async () => {
    const events = [
      valid("ok-0"),
      { ...valid("missing-type"), type: "" },
      valid("ok-2"),
      { ...valid("missing-actor"), actor: undefined },
      { ...valid("bad-action"), action: "DROP TABLE" },
      { ...valid("future"), time: new Date(Date.now() + 3600_000).toISOString() },
      { ...valid("huge-message"), message: "y".repeat(9000) },
      { ...valid("bad-ip"), actor: { id: "u", ip: "999.1.1.1" } },
      { ...valid("bad-key"), attributes: { "has space": "v" } },
      { ...valid("too-many"), attributes: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) },
      { ...valid("bad id with spaces") },
      { ...valid("offset"), utcOffsetMinutes: 5000 },
      { ...valid("huge-state"), before: { blob: "z".repeat(40_000) } },
      valid("ok-13"),
    ];
    const res = await append({ events });
    expect(res.status).toBe(200);
    expect(res.json.acceptedCount).toBe("3");
    const byIndex = Object.fromEntries(res.json.rejections.map((r: any) => [r.index, [r.field, r.reason]]));
    expect(Object.keys(byIndex).sort((a, b) => Number(a) - Number(b))).toEqual(["1", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]);
    expect(byIndex["1"]).toEqual(["type", "type is required"]);
    expect(byIndex["3"]).toEqual(["actor.id", "actor.id is required"]);
    expect(byIndex["4"][0]).toBe("action");
    expect(byIndex["5"]).toEqual(["time", expect.stringContaining("in the future")]);
    expect(byIndex["6"]).toEqual(["message", "message is 9000 bytes; the limit is 8192"]);
    expect(byIndex["7"]).toEqual(["actor.ip", expect.stringContaining("not an IPv4 or IPv6")]);
    expect(byIndex["8"][0]).toBe("attributes");
    expect(byIndex["9"]).toEqual(["attributes", "65 attributes; the limit is 64"]);
    expect(byIndex["10"][0]).toBe("id");
    expect(byIndex["11"][0]).toBe("utc_offset_minutes");
    expect(byIndex["12"][0]).toBe("before");
    expect(res.json.ids).toEqual(["ok-0", "", "ok-2", "", "", "", "", "", "", "", "", "", "", "ok-13"]);
    expect(await storedIds()).toEqual(expect.arrayContaining(["ok-0", "ok-2", "ok-13"]));
    expect(await storedIds()).not.toContain("missing-type");
  });

  it("counts indexes across the messages of an Ingest stream", async () => {
    const client = grpcJsIngestClient(server.port);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${writer}`);
    const res = await new Promise<any>((resolve, reject) => {
      const call = client.Ingest(md, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r)));
      call.write({ events: [valid("st-0"), valid("st-1")] });
      call.write({ events: [valid("st-2"), { ...valid("st-3"), type: "bad type" }] });
      call.end();
    });
    client.close();
    expect(res.acceptedCount).toBe("3");
    expect(res.rejections).toEqual([expect.objectContaining({ index: "3", field: "type", code: "invalid_argument" })]);
    expect(await storedIds()).toEqual(expect.arrayContaining(["st-0", "st-1", "st-2"]));
  });

  it("lists the first 10,000 rejections of a stream and counts them all, so a long stream's answer stays small", async () => {
    const { ingest } = connectClients(server.baseUrl, "grpc");
    async function* messages() {
      // This server takes 100 events a message.
      for (let m = 0; m < 120; m++) {
        yield { events: Array.from({ length: 100 }, (_, i) => ({ ...valid(`many-bad-${m}-${i}`), type: "bad type" })) };
      }
      yield { events: [valid("many-bad-ok")] };
    }
    const res = await ingest.ingest(messages(), bearer(writer));
    expect([res.acceptedCount, res.rejectedCount, res.rejections.length]).toEqual([1n, 12_000n, 10_000]);
    expect(res.rejections[9_999]).toMatchObject({ index: 9_999n, field: "type" });
  });

  it("rejects a malformed event of a binary request alone, saying why; its neighbours are stored (Connect and gRPC)", async () => {
    const encoded = (id: string) => toBinary(EventSchema, create(EventSchema, valid(id)));
    // Field 5 (type) holding bytes that are not UTF-8: valid framing, invalid event.
    const broken = new Uint8Array([0x2a, 0x02, 0xff, 0xfe]);
    const request = (events: Uint8Array[]) =>
      Buffer.concat(events.flatMap((e) => [Buffer.from([0x0a, e.byteLength]), Buffer.from(e)]));

    const res = await fetch(`${server.baseUrl}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${writer}` },
      body: request([encoded("wire-0"), broken, encoded("wire-2")]),
    });
    expect(res.status).toBe(200);
    const appended = fromBinary(AppendResponseSchema, new Uint8Array(await res.arrayBuffer()));
    expect(appended.acceptedCount).toBe(2n);
    expect(appended.rejections).toEqual([
      expect.objectContaining({ index: 1n, code: "invalid_argument", reason: expect.stringMatching(/not a valid protobuf auditlog\.v1\.Event.*UTF-8/) }),
    ]);

    const payload = request([broken, encoded("wire-4")]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, payload.byteLength]), payload]);
    const { body } = await rawGrpc("/auditlog.v1.IngestService/Ingest", frame);
    const ingested = fromBinary(IngestResponseSchema, body.subarray(5));
    expect(ingested.acceptedCount).toBe(1n);
    expect(ingested.rejections).toEqual([expect.objectContaining({ index: 0n, code: "invalid_argument" })]);
    expect(await storedIds()).toEqual(expect.arrayContaining(["wire-0", "wire-2", "wire-4"]));
  });

  it("keeps serving after all of that", async () => {
    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    const res = await append({ events: [valid("after-all")] });
    expect(res.json.acceptedCount).toBe("1");
  });
});

describe("malformed HTTP", () => {
  it("answers an HTTP/1.0 request without Host with 400 and keeps serving", async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.port, "127.0.0.1", () =>
        socket.end("POST /auditlog.v1.QueryService/SearchEvents HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
      );
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.[01] 400/);
    expect(raw).toContain('"code":"invalid_argument"');
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
  });
});

describe("binary protobuf with values out of range", () => {
  it("rejects an event time beyond what can be stored as that event's error", async () => {
    const { ingest } = connectClients(server.baseUrl, "connect-binary");
    const res = await ingest.append(
      { events: [sampleEvent(1, { id: "ok-time" }), sampleEvent(2, { id: "us-as-seconds", time: { seconds: 1_700_000_000_000_000n, nanos: 0 } })] },
      bearer(writer),
    );
    expect(res.acceptedCount).toBe(1n);
    expect(res.rejections).toEqual([expect.objectContaining({ index: 1n, field: "time" })]);
  });

  it("rejects an out-of-range severity as an event error, not a crash", async () => {
    const body = toBinary(AppendRequestSchema, create(AppendRequestSchema, { events: [sampleEvent(1, { id: "enum-99", severity: 99 as Severity })] }));
    const res = await fetch(`${server.baseUrl}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${writer}` },
      body,
    });
    expect(res.status).toBe(200);
    const { ingest } = connectClients(server.baseUrl, "connect-binary");
    const again = await ingest.append({ events: [sampleEvent(1, { id: "enum-99b", severity: 99 as Severity })] }, bearer(writer));
    expect(again.acceptedCount).toBe(0n);
    expect(again.rejections[0]).toMatchObject({ index: 0n, field: "severity" });
  });
});
