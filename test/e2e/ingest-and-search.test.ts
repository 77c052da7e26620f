import { create, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventSchema, Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { SearchEventsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { bearer, connectClients, grpcJsIngestClient, postJson, type Protocol } from "../helpers/clients.ts";
import { encodingSampleEvents, sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";

let server: TestServer;
let writer: string;
let auditor: string;

beforeAll(async () => {
  server = await startServer();
  writer = await server.token("acme", ["writer"]);
  auditor = await server.token("acme", ["auditor"]);
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

/** Every event matching a filter, following next_page_token to the end. */
async function searchAll(filter: Record<string, unknown>, pageSize = 1000, token = auditor) {
  const { query } = connectClients(server.baseUrl, "connect-binary");
  const events: Event[] = [];
  let pageToken = "";
  do {
    const res = await query.searchEvents({ filter, pageSize, pageToken }, bearer(token));
    events.push(...res.events);
    pageToken = res.nextPageToken;
  } while (pageToken);
  return events;
}

/** The fields a producer sent, as JSON, without what the server adds. */
function sent(e: Event) {
  const json = toJson(EventSchema, e) as Record<string, unknown>;
  // Set by the server: when and on which chain it was stored.
  for (const field of ["receivedAt", "tenantId", "chainId", "seq", "prevHash", "hash", "checkpoint"]) delete json[field];
  return json;
}

describe("Ingest over gRPC with @grpc/grpc-js built from the .proto files", () => {
  const total = 20_000;

  it("streams 20,000 events and acknowledges them after they are stored", async () => {
    const client = grpcJsIngestClient(server.port);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${writer}`);
    const response = await new Promise<any>((resolve, reject) => {
      const call = client.Ingest(metadata, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
      (async () => {
        for (let start = 0; start < total; start += 500) {
          const events = [];
          for (let n = start; n < start + 500; n++) {
            const e = sampleEvent(100_000 + n);
            events.push({
              id: e.id,
              time: { seconds: String(e.time!.seconds), nanos: e.time!.nanos },
              utcOffsetMinutes: e.utcOffsetMinutes,
              type: e.type,
              action: e.action,
              outcome: "OUTCOME_SUCCESS",
              severity: "SEVERITY_INFO",
              actor: e.actor,
              resource: e.resource,
              source: e.source,
              requestId: e.requestId,
              message: e.message,
              attributes: e.attributes,
            });
          }
          if (!call.write({ events })) await new Promise((r) => call.once("drain", r));
        }
        call.end();
      })().catch(reject);
    });
    client.close();
    expect(response).toMatchObject({ acceptedCount: String(total), duplicateCount: "0", rejections: [] });

    // Only the streamed events are this late in the sample timeline.
    const stored = await searchAll({ startTime: timestampFromDate(new Date(Date.UTC(2026, 10, 2, 3))) });
    const ids = new Set(stored.map((e) => e.id));
    expect(ids.size).toBe(total);
    for (let n = 0; n < total; n += 997) expect(ids.has(`evt-${100_000 + n}`)).toBe(true);
  });

  it("stores what was sent, field by field", async () => {
    const [event] = await searchAll({ attributes: { seq: String(100_000 + 4321) } });
    const expected = sampleEvent(100_000 + 4321, { outcome: Outcome.SUCCESS, severity: Severity.INFO });
    expect(sent(event)).toEqual(sent(expected));
    expect(event.tenantId).toBe("acme");
    expect(event.receivedAt).toBeDefined();
  });
});

describe.each<Protocol>(["connect-json", "connect-binary", "grpc", "grpc-web"])("Append and SearchEvents over %s", (protocol) => {
  it("appends a batch and finds it again", async () => {
    const { ingest, query } = connectClients(server.baseUrl, protocol);
    const tag = `proto-${protocol}`;
    const events = [0, 1, 2].map((i) =>
      sampleEvent(i, {
        id: `${tag}-${i}`,
        before: { plan: "free", seats: 3 },
        after: { plan: "pro", seats: 5, tags: ["a", "b"], nested: { ok: true, none: null } },
        attributes: { protocol, i: String(i) },
      }),
    );
    const res = await ingest.append({ events }, bearer(writer));
    expect(res.acceptedCount).toBe(3n);
    expect(res.ids).toEqual(events.map((e) => e.id));

    const found = await query.searchEvents({ filter: { attributes: { protocol } } }, bearer(auditor));
    expect(found.events.map((e) => e.id)).toEqual([`${tag}-2`, `${tag}-1`, `${tag}-0`]);
    expect(found.events.map(sent)).toEqual([...events].reverse().map(sent));

    const one = await query.getEvent({ id: `${tag}-1` }, bearer(auditor));
    expect(sent(one.event!)).toEqual(sent(events[1]));
  });
});

describe("SearchEvents pages are the same in every encoding", () => {
  it("answers binary requests (own encoder) exactly as JSON ones (protobuf-es), chain fields and checkpoints included", async () => {
    const { ingest } = connectClients(server.baseUrl, "connect-binary");
    const events = encodingSampleEvents();
    expect((await ingest.append({ events }, bearer(writer))).acceptedCount).toBe(4n);
    const pages: Record<string, unknown> = {};
    for (const protocol of ["connect-json", "connect-binary", "grpc", "grpc-web"] as const) {
      const { query } = connectClients(server.baseUrl, protocol);
      const page = await query.searchEvents({ filter: { attributes: { suite: "encodings" } }, pageSize: 3 }, bearer(auditor));
      // The page token holds each request's own snapshot time: compared apart.
      expect(page.nextPageToken, protocol).not.toBe("");
      pages[protocol] = toJson(SearchEventsResponseSchema, { ...page, nextPageToken: "" });
    }
    const json = pages["connect-json"] as { events: Record<string, unknown>[] };
    expect(json.events.map((e) => e.id)).toEqual(["enc-3", "enc-2", "enc-1"]);
    expect(json.events.some((e) => e.checkpoint !== undefined)).toBe(true);
    for (const protocol of ["connect-binary", "grpc", "grpc-web"]) expect(pages[protocol], protocol).toEqual(pages["connect-json"]);
  });
});

describe("Connect JSON with plain fetch, as curl sends it", () => {
  it("appends events of two new types and reads them back by type, attribute and time range", async () => {
    const append = await postJson(
      server.baseUrl,
      "auditlog.v1.IngestService/Append",
      {
        events: [
          {
            type: "warehouse.pallet.moved",
            action: "update",
            actor: { id: "forklift-7", type: "device" },
            resource: { type: "pallet", id: "P-1" },
            time: "2026-11-20T10:00:00.123456+01:00",
            utcOffsetMinutes: 60,
            attributes: { from: "A1", to: "B7" },
            message: "Pallet moved to bay B7",
          },
          {
            type: "hr.review.submitted",
            action: "CREATE",
            outcome: "OUTCOME_SUCCESS",
            severity: "SEVERITY_WARNING",
            actor: { id: "manager-3" },
            time: "2026-11-20T12:00:00Z",
            after: { score: 4.5, comments: "solid" },
          },
        ],
      },
      writer,
    );
    expect(append.status).toBe(200);
    expect(append.json.acceptedCount).toBe("2");
    const [palletId, reviewId] = append.json.ids;
    expect(palletId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const byType = await postJson(server.baseUrl, "auditlog.v1.QueryService/SearchEvents", { filter: { types: ["warehouse.pallet.moved"] } }, auditor);
    expect(byType.status).toBe(200);
    expect(byType.json.events).toHaveLength(1);
    expect(byType.json.events[0]).toMatchObject({
      id: palletId,
      tenantId: "acme",
      action: "UPDATE",
      severity: "SEVERITY_INFO",
      time: "2026-11-20T09:00:00.123456Z",
      utcOffsetMinutes: 60,
      attributes: { from: "A1", to: "B7" },
    });

    const byAttribute = await postJson(server.baseUrl, "auditlog.v1.QueryService/SearchEvents", { filter: { attributes: { to: "B7" } } }, auditor);
    expect(byAttribute.json.events.map((e: any) => e.id)).toEqual([palletId]);

    const byTime = await postJson(
      server.baseUrl,
      "auditlog.v1.QueryService/SearchEvents",
      { filter: { startTime: "2026-11-20T11:00:00Z", endTime: "2026-11-20T13:00:00Z" } },
      auditor,
    );
    expect(byTime.json.events.map((e: any) => e.id)).toEqual([reviewId]);
    expect(byTime.json.events[0].after).toEqual({ score: 4.5, comments: "solid" });

    const got = await postJson(server.baseUrl, "auditlog.v1.QueryService/GetEvent", { id: reviewId }, auditor);
    expect(got.json.event).toMatchObject({ id: reviewId, type: "hr.review.submitted", severity: "SEVERITY_WARNING" });
  });

  it("answers NOT_FOUND for an unknown id", async () => {
    const res = await postJson(server.baseUrl, "auditlog.v1.QueryService/GetEvent", { id: "no-such-event" }, auditor);
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ code: "not_found", message: 'no event with id "no-such-event" in tenant "acme"' });
  });
});

describe("EventFilter", () => {
  const base = Date.UTC(2026, 9, 1);
  beforeAll(async () => {
    const { ingest } = connectClients(server.baseUrl);
    const events = Array.from({ length: 40 }, (_, n) =>
      create(EventSchema, {
        id: `flt-${n}`,
        time: timestampFromDate(new Date(base + n * 60_000)),
        type: n % 2 ? "filter.alpha" : "filter.beta",
        action: n % 4 === 0 ? "DELETE" : "VIEW",
        outcome: n % 5 === 0 ? Outcome.FAILURE : Outcome.SUCCESS,
        severity: (n % 4) + 1,
        actor: { id: `fa-${n % 3}` },
        resource: { type: n % 2 ? "doc" : "folder", id: `r-${n % 6}` },
        source: n < 20 ? "svc-a" : "svc-b",
        requestId: `fr-${Math.floor(n / 10)}`,
        message: n === 7 ? "Card DECLINED by issuer" : `ordinary event ${n}`,
        attributes: { group: "filter", parity: n % 2 ? "odd" : "even", ...(n === 3 ? { empty: "" } : {}) },
      }),
    );
    await ingest.append({ events }, bearer(writer));
  });

  const expectIds = async (filter: Record<string, unknown>, predicate: (n: number) => boolean) => {
    const got = (await searchAll({ attributes: { group: "filter" }, ...filter }, 7)).map((e) => Number(e.id.slice(4)));
    const want = Array.from({ length: 40 }, (_, n) => n).filter(predicate).reverse();
    expect(got).toEqual(want);
  };

  it("matches types", () => expectIds({ types: ["filter.alpha"] }, (n) => n % 2 === 1));
  it("matches actions, case-insensitively", () => expectIds({ actions: ["delete"] }, (n) => n % 4 === 0));
  it("matches outcomes", () => expectIds({ outcomes: [Outcome.FAILURE] }, (n) => n % 5 === 0));
  it("matches a minimum severity", () => expectIds({ minSeverity: Severity.ERROR }, (n) => n % 4 >= 2));
  it("matches actor ids", () => expectIds({ actorIds: ["fa-1", "fa-2"] }, (n) => n % 3 !== 0));
  it("matches resource type and ids", () => expectIds({ resourceType: "doc", resourceIds: ["r-1"] }, (n) => n % 6 === 1));
  it("matches sources", () => expectIds({ sources: ["svc-b"] }, (n) => n >= 20));
  it("matches a request id", () => expectIds({ requestId: "fr-2" }, (n) => n >= 20 && n < 30));
  it("matches several attributes at once", () => expectIds({ attributes: { group: "filter", parity: "odd" } }, (n) => n % 2 === 1));
  it("tells an attribute set to the empty string from a missing one", () => expectIds({ attributes: { group: "filter", empty: "" } }, (n) => n === 3));
  it("matches text in the message, ignoring case", () => expectIds({ text: "card declined" }, (n) => n === 7));
  it("matches a time range, start inclusive and end exclusive", () =>
    expectIds(
      { startTime: timestampFromDate(new Date(base + 10 * 60_000)), endTime: timestampFromDate(new Date(base + 15 * 60_000)) },
      (n) => n >= 10 && n < 15,
    ));
  it("combines conditions with AND", () => expectIds({ types: ["filter.beta"], sources: ["svc-a"], actions: ["VIEW"] }, (n) => n % 2 === 0 && n < 20 && n % 4 !== 0));
});
