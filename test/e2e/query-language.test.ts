import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventFilterSchema, Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { appendAll, searchAllJson } from "../helpers/bulk.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail } from "../helpers/tail.ts";

let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let auditor: string;
const BASE = Date.UTC(2026, 10, 1);

/** 300 events; `amount` and `note` make numeric and full-text matches on attributes. */
const EVENTS: Event[] = Array.from({ length: 300 }, (_, n) =>
  sampleEvent(n, {
    id: `q-${n}`,
    source: n % 3 ? "billing-api" : "auth-api",
    type: ["billing.invoice.paid", "billing.refund.issued", "auth.login", "order.viewed"][n % 4],
    message: n % 10 === 0 ? `Card declined for account ${n % 17}` : `Event number ${n}`,
    attributes: { seq: String(n), plan: n % 2 ? "pro" : "free", amount: String((n * 7) % 250), note: n % 25 === 0 ? "VIP customer" : "regular" },
  }),
);

beforeAll(async () => {
  server = await startServer();
  clients = connectClients(server.baseUrl, "connect-binary");
  auditor = await server.token("ql", ["auditor"]);
  await appendAll(clients, await server.token("ql", ["writer"]), EVENTS);
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

/** Our events only: reads leave events of their own in the tenant. */
const search = async (filter: MessageInitShape<typeof EventFilterSchema>) =>
  (await searchAllJson(clients, auditor, { sources: ["billing-api", "auth-api"], ...filter })).map((e) => e.id as string).sort();
const ids = (pick: (e: Event, n: number) => boolean) => EVENTS.filter(pick).map((e) => e.id).sort();

describe("the query language in SearchEvents", () => {
  it.each<[string, MessageInitShape<typeof EventFilterSchema>]>([
    ["type:auth.login", { types: ["auth.login"] }],
    ["action:view", { actions: ["VIEW"] }],
    ["outcome:FAILURE", { outcomes: [Outcome.FAILURE] }],
    ["severity:>=WARNING", { minSeverity: Severity.WARNING }],
    ["actor:user-3", { actorIds: ["user-3"] }],
    ["resource_type:account resource:acct-4", { resourceType: "account", resourceIds: ["acct-4"] }],
    ["source:auth-api", { sources: ["auth-api"] }],
    ["request:req-7", { requestId: "req-7" }],
    ["attr.plan:pro attr.note:regular", { attributes: { plan: "pro", note: "regular" } }],
    [
      "since:2026-11-01T00:01:40Z until:2026-11-01T00:03:20Z",
      { startTime: timestampFromDate(new Date(BASE + 100_000)), endTime: timestampFromDate(new Date(BASE + 200_000)) },
    ],
  ])("%s equals its EventFilter", async (query, filter) => {
    const viaQuery = await search({ query });
    expect(viaQuery.length).toBeGreaterThan(0);
    expect(viaQuery).toEqual(await search(filter));
  });

  it.each<[string, (e: Event, n: number) => boolean]>([
    ["type:billing.*", (e) => e.type.startsWith("billing.")],
    ["attr.amount:>100", (e) => Number(e.attributes.amount) > 100],
    ["attr.amount:<=20 attr.plan:free", (e) => Number(e.attributes.amount) <= 20 && e.attributes.plan === "free"],
    ['"card declined"', (e) => e.message.toLowerCase().includes("card declined")],
    ["vip", (e) => e.attributes.note === "VIP customer"],
    ["-action:VIEW type:order.viewed", (e) => e.action !== "VIEW" && e.type === "order.viewed"],
    ["(outcome:FAILURE OR severity:WARNING) -type:billing.*", (e) => (e.outcome === Outcome.FAILURE || e.severity === Severity.WARNING) && !e.type.startsWith("billing.")],
    ["NOT (plan OR declined)", (e) => !/plan|declined/i.test(e.message + Object.values(e.attributes).join(" "))],
    ['type:billing.* actor:user-2 attr.amount:>100 outcome:SUCCESS "event number" -action:DELETE since:2026-10-01', (e) =>
      e.type.startsWith("billing.") && e.actor!.id === "user-2" && Number(e.attributes.amount) > 100 && e.outcome === Outcome.SUCCESS &&
      e.message.toLowerCase().includes("event number") && e.action !== "DELETE"],
  ])("%s", async (query, pick) => {
    const want = ids(pick);
    expect(want.length).toBeGreaterThan(0);
    expect(await search({ query })).toEqual(want);
  });

  it("ANDs with the other filter fields", async () => {
    expect(await search({ query: "attr.plan:pro", types: ["auth.login"] })).toEqual(ids((e) => e.attributes.plan === "pro" && e.type === "auth.login"));
  });

  it("a relative since: keeps the first page's bound on every later page", async () => {
    // Three events inside `since:60s` when the first page is read (with two
    // seconds to spare for a slow machine); the next pages are asked for once
    // the clock has moved past where a bound counted from their own time
    // would drop the older two.
    const writer = await server.token("ql-paging", ["writer"]);
    const reader = await server.token("ql-paging", ["auditor"]);
    const startedMs = Date.now();
    const inside = [57_000, 57_500, 58_000].map((ago, n) => sampleEvent(n, { id: `edge-${n}`, source: "edge", time: timestampFromDate(new Date(startedMs - ago)) }));
    await appendAll(clients, writer, inside);
    const filter = { query: "since:60s", sources: ["edge"] };
    const first = await clients.query.searchEvents({ filter, pageSize: 1 }, bearer(reader));
    expect(first.events.map((e) => e.id)).toEqual(["edge-0"]);
    const boundAtFirstPage = Date.now();
    // Time passing is the subject here, not a stand-in for an event.
    await new Promise((resolve) => setTimeout(resolve, startedMs + 3_100 - boundAtFirstPage));
    const ids = first.events.map((e) => e.id);
    let token = first.nextPageToken;
    while (token) {
      const page = await clients.query.searchEvents({ filter, pageSize: 1, pageToken: token }, bearer(reader));
      ids.push(...page.events.map((e) => e.id));
      token = page.nextPageToken;
    }
    expect(ids).toEqual(["edge-0", "edge-1", "edge-2"]);
  });

  it("a malformed query is INVALID_ARGUMENT, saying where and what was expected", async () => {
    await expect(clients.query.searchEvents({ filter: { query: "type:billing.* (outcome:FAILURE" } }, bearer(auditor))).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: 'query: expected ")" to close the "(" at position 16 at position 32',
    });
  });
});

describe("the query language elsewhere", () => {
  it("?q= on the export route", async () => {
    const res = await fetch(`${server.baseUrl}/v1/export?q=${encodeURIComponent("attr.amount:>200 source:billing-api")}`, {
      headers: { authorization: `Bearer ${auditor}` },
    });
    const got = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).id).sort();
    expect(got).toEqual(ids((e) => Number(e.attributes.amount) > 200 && e.source === "billing-api"));
  });

  it("the live tail evaluates a query exactly as SearchEvents does", async () => {
    const queries = ["type:billing.* attr.amount:>100", '"card declined" OR vip', "-(outcome:FAILURE OR severity:>=WARNING) attr.plan:fr*", "attr.seq:<10"];
    const writer = await server.token("ql-live", ["writer"]);
    const live = await server.token("ql-live", ["auditor"]);
    const tails = queries.map((query) => connectTail(clients, live, { filter: { query, sources: ["billing-api", "auth-api"] } }));
    await Promise.all(tails.map((t) => t.collector.until((c) => c.live)));
    await appendAll(clients, writer, EVENTS);
    for (const [i, query] of queries.entries()) {
      const want = (await searchAllJson(clients, live, { query, sources: ["billing-api", "auth-api"] })).map((e) => e.id).sort();
      expect(want.length, query).toBeGreaterThan(0);
      await tails[i].collector.until((c) => c.events.length >= want.length);
      expect(tails[i].collector.events.map((e) => e.id).sort(), query).toEqual(want);
      tails[i].close();
    }
  });
});
