/**
 * Injection through every input that reaches a query: each EventFilter field,
 * the query language (`EventFilter.query`, `?q=` on the download), GetEvent
 * and GetTimeline, page tokens and tail cursors, the tenant an admin names.
 *
 * Events are stored whose every free-text field holds one hostile string
 * (quotes, backslashes, `{p0:String}` lookalikes, SQL, NUL, control
 * characters, unicode, the longest value a field takes), beside decoys that
 * a broken escape would confuse with them (prefixes, truncations, the
 * precomposed twin of a combining sequence). Searching for each string must
 * return exactly the events holding it. Inputs the service refuses are
 * INVALID_ARGUMENT with a message that shows no SQL. At the end the table is
 * whole and the server healthy.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { parse as parseCsv } from "csv-parse/sync";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";
import { AppendRequestSchema, AppendResponseSchema } from "../../gen/auditlog/v1/ingest_pb.js";
import { QueryService, SearchEventsRequestSchema } from "../../gen/auditlog/v1/query_pb.js";
import { Code, createClient } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, connectClients } from "../helpers/clients.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail } from "../helpers/tail.ts";
import { callJson, expectConnectError, expectNoSqlLeak, get, healthz, inParallel, RPC, show, type RawAnswer } from "./support.ts";

const TENANT = "inj";
const BATCH = { batch: "inj" };

/** Hostile strings; each is stored in every free-text field of one event. All distinct, each at most 256 bytes. */
const NASTY = [
  "'",
  '"',
  "\\",
  "\\'",
  "\\\\'",
  "''",
  "' OR 1=1 --",
  "' OR '1'='1",
  '" OR ""="',
  "'; DROP TABLE events; --",
  "x'); DROP TABLE events; --",
  "x' UNION SELECT tenant_id, id, message FROM events --",
  "1 UNION ALL SELECT name FROM system.tables",
  "{p0:String}",
  "{p1:Array(String)}",
  "{p0:String}') OR ({p1:String}",
  "{tenant:String}",
  "$1",
  "?",
  ":name",
  "a\u0000b",
  "\u0000",
  "tab\there",
  "line\nbreak\r\nend",
  "\\N",
  "NULL",
  "\\0",
  "\\x27",
  "\\u0027",
  "%",
  "_",
  "%' --",
  ".*",
  "a*",
  "`events`",
  "/* comment */",
  "-- comment",
  "']",
  "'), ('x",
  "[1,2]",
  '{"a":1}',
  "\u0001\u001f\u007f",
  "Ünïcødé ✓ 日本語 🔥 עברית",
  "e\u0301",
  "a\u200bb",
  "\u202eevil",
  "\ufeffbom",
  "\u02bc OR 1=1",
  "''".repeat(128),
  "x".repeat(256),
  "\u00e9".repeat(128),
];

/** Look-alikes a broken escape or a truncation would match instead. */
const DECOYS = ["a", "b", "ab", "x", "tab", "here", "line", "OR", "1=1", "events", "evil", "bom", "\u00e9", "' OR 1=1", "DROP TABLE events", "{p0:String", "p0:String", "N", "0", "x27", "comment", "1,2", "'x", "a\\u0000b"];

const ALL = [...NASTY.map((s, i) => ({ id: `inj-${i}`, s })), ...DECOYS.map((s, i) => ({ id: `dec-${i}`, s }))];

const storedEvent = ({ id, s }: { id: string; s: string }) => ({
  id,
  type: "inj.event",
  action: "CREATE",
  actor: { id: s, type: s, name: s, sessionId: s, userAgent: s },
  resource: { type: s, id: s, name: s },
  source: s,
  requestId: s,
  message: s,
  attributes: { ...BATCH, v: s },
  before: { v: s },
  after: { [s]: s },
});

/** The ids of stored events whose value is exactly `s`. */
const holding = (s: string) => ALL.filter((e) => e.s === s).map((e) => e.id).sort();

/**
 * Full-text semantics as README states them ("Full-text search"): words are
 * runs of ASCII letters and digits and of non-ASCII characters, compared
 * lower-cased. One word: a word of the message or of one attribute value. A
 * term with several words: as written (ignoring case) in the message or in an
 * attribute value, whose words include all of the term's. No word: substring.
 */
const SEPARATORS = /[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+/;
const wordsOf = (text: string) => text.toLowerCase().split(SEPARATORS).filter((w) => w !== "");
function textMatches(term: string, e: { s: string }): boolean {
  const message = e.s;
  const values = [BATCH.batch, e.s];
  const words = wordsOf(term);
  const hasAll = (texts: string[]) => {
    const present = new Set(texts.flatMap(wordsOf));
    return words.every((w) => present.has(w));
  };
  const contains = (text: string) => text.toLowerCase().includes(term.toLowerCase());
  if (!SEPARATORS.test(term)) return hasAll([message]) || hasAll(values);
  if (words.length > 0) return (contains(message) && hasAll([message])) || (values.some(contains) && hasAll(values));
  return contains(message) || values.some(contains);
}
const textExpected = (term: string) => ALL.filter((e) => textMatches(term, e)).map((e) => e.id).sort();

/** A value in the query language's quotes: `"` and `\` escaped. */
const quoted = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

let server: TestServer;
let writer: string;
let auditor: string;
let admin: string;

beforeAll(async () => {
  // Reads' audit events wait up to 1 s for a batch, and commits skip fsync: hundreds of searches stay quick.
  server = await startServer({ env: { AUDITLOG_READ_AUDIT_DELAY_MS: "1000", AUDITLOG_FSYNC: "false" } });
  writer = await server.token(TENANT, ["writer"]);
  auditor = await server.token(TENANT, ["auditor"]);
  admin = await server.token("", ["admin"]);
  const res = await callJson(server.baseUrl, RPC.append, { events: ALL.map(storedEvent) }, writer);
  expect(res.status, res.text).toBe(200);
  expect(res.json.rejections ?? [], res.text).toEqual([]);
  expect(res.json.acceptedCount).toBe(String(ALL.length));
});
afterAll(async () => {
  await server.stop();
  removeDataDir(server.dataDir);
});

const search = (body: unknown, token = auditor) => callJson(server.baseUrl, RPC.search, body, token);

/** The sorted ids a filter finds, or a problem description when the search failed. */
async function idsOf(filter: Record<string, unknown>, token = auditor): Promise<string[] | string> {
  const res = await search({ filter, pageSize: 1000 }, token);
  if (res.status !== 200) return `HTTP ${res.status}: ${res.text.slice(0, 200)}`;
  return (res.json.events ?? []).map((e: { id: string }) => e.id).sort();
}

/** Runs each check, collects every mismatch, then asserts there were none (so one run reports them all). */
async function expectAllExact(checks: { label: string; run: () => Promise<string[] | string>; want: string[] }[]): Promise<void> {
  const problems: string[] = [];
  await inParallel(checks, 6, async (c) => {
    const got = await c.run();
    if (typeof got === "string" || JSON.stringify(got) !== JSON.stringify(c.want)) {
      problems.push(`${c.label}: want ${JSON.stringify(c.want)}, got ${typeof got === "string" ? got : JSON.stringify(got)}`);
    }
  });
  expect(problems).toEqual([]);
}

/** Asserts an INVALID_ARGUMENT answer whose message shows no SQL. */
function expectInvalid(res: RawAnswer, inputs: string[], label: string): void {
  expectConnectError(res, "invalid_argument", label);
  expectNoSqlLeak(res.json.message, inputs, label);
}

describe("hostile strings are stored as sent", () => {
  it("every field of every stored event reads back byte for byte", async () => {
    const res = await search({ filter: { attributes: BATCH }, pageSize: 1000 });
    expect(res.status).toBe(200);
    const byId = Object.fromEntries(res.json.events.map((e: any) => [e.id, e]));
    const problems: string[] = [];
    for (const e of ALL) {
      const got = byId[e.id];
      const want = storedEvent(e);
      const same =
        got &&
        JSON.stringify([got.actor, got.resource, got.source, got.requestId, got.message, got.attributes, got.before, got.after]) ===
          JSON.stringify([
            { id: e.s, type: e.s, name: e.s, sessionId: e.s, userAgent: e.s },
            want.resource,
            e.s,
            e.s,
            e.s,
            want.attributes,
            want.before,
            want.after,
          ]);
      if (!same) problems.push(`${e.id} ${show(e.s)}: ${JSON.stringify(got).slice(0, 300)}`);
    }
    expect(problems).toEqual([]);
  });

  it("the NDJSON export holds each event exactly as SearchEvents returns it, and the CSV export each value exactly", async () => {
    const searched = await search({ filter: { attributes: BATCH }, pageSize: 1000 });
    const ndjson = await get(server.baseUrl, "/v1/export?attr.batch=inj", auditor);
    expect(ndjson.status).toBe(200);
    const lines = ndjson.text.trimEnd().split("\n").map((l) => JSON.parse(l));
    const byId = (list: any[]) => Object.fromEntries(list.map((e) => [e.id, e]));
    expect(byId(lines)).toEqual(byId(searched.json.events));
    const csv = await get(server.baseUrl, "/v1/export?format=csv&attr.batch=inj", auditor);
    expect(csv.status).toBe(200);
    const rows: Record<string, string>[] = parseCsv(csv.text, { columns: true });
    const problems = ALL.filter((e) => {
      const row = rows.find((r) => r.id === e.id);
      return !row || row["actor.id"] !== e.s || row.message !== e.s || row["attributes.v"] !== e.s || JSON.parse(row.after)[e.s] !== e.s;
    }).map((e) => `${e.id} ${show(e.s)}`);
    expect(problems).toEqual([]);
  });
});

describe("each EventFilter field takes hostile values as values", () => {
  it("exact-match fields find exactly the events holding the value: a list (actor_ids), a string (resource_type), an attribute, and every field at once", async () => {
    // The three ways a value reaches SQL (Array(String), String, map lookup) one by one; then all
    // exact-match fields together (actor_ids, resource_ids, sources, resource_type, request_id,
    // attributes), where any one of them mangled would lose the event.
    const checks = NASTY.flatMap((s) => [
      { label: `actor_ids ${show(s)}`, run: () => idsOf({ actorIds: [s] }), want: holding(s) },
      { label: `resource_type ${show(s)}`, run: () => idsOf({ resourceType: s }), want: holding(s) },
      { label: `attributes.v ${show(s)}`, run: () => idsOf({ attributes: { v: s } }), want: holding(s) },
      { label: `all fields at once ${show(s)}`, run: () => idsOf({ actorIds: [s], resourceIds: [s], sources: [s], resourceType: s, requestId: s, attributes: { v: s, ...BATCH } }), want: holding(s) },
      { label: `actor_ids [${show(s)}, "a"]`, run: () => idsOf({ actorIds: [s, "a"] }), want: [...new Set([...holding(s), ...holding("a")])].sort() },
    ]);
    await expectAllExact(checks);
  });

  it("hostile values in types, actions and attribute keys match nothing, and do not disturb the other values of a list", async () => {
    const everything = ALL.map((e) => e.id).sort();
    const checks = NASTY.flatMap((s) => [
      { label: `types and actions ${show(s)}`, run: () => idsOf({ types: [s], actions: [s], attributes: BATCH }), want: [] as string[] },
      { label: `types [${show(s)}, "inj.event"], actions [${show(s)}, "create"]`, run: () => idsOf({ types: [s, "inj.event"], actions: [s, "create"], attributes: BATCH }), want: everything },
      { label: `attribute key ${show(s)}`, run: () => idsOf({ attributes: { [s]: "x" } }), want: [] as string[] },
    ]);
    await expectAllExact(checks);
  });

  it("text (full-text) finds exactly the events the documented semantics select", async () => {
    await expectAllExact(NASTY.filter((s) => Buffer.byteLength(s) <= 1024).map((s) => ({ label: `text ${show(s)}`, run: () => idsOf({ text: s, attributes: BATCH }), want: textExpected(s) })));
  });

  it("enum and time fields refuse hostile JSON with INVALID_ARGUMENT", async () => {
    const bad: [string, unknown][] = [
      ["startTime", "' OR 1=1 --"],
      ["endTime", "2026-01-01T00:00:00Z' OR '1'='1"],
      ["outcomes", ["' OR 1=1 --"]],
      ["outcomes", [99]],
      ["minSeverity", "SEVERITY_INFO' --"],
      ["minSeverity", 99],
      ["types", "not-a-list"],
      ["attributes", { k: 1 }],
      ["attributes", ["' OR 1=1"]],
    ];
    for (const [field, value] of bad) {
      const res = await search({ filter: { [field]: value } });
      expectInvalid(res, [JSON.stringify(value), String(value)], `${field}=${JSON.stringify(value)}`);
    }
  });

  it("a hostile tenant_id is PERMISSION_DENIED for an auditor, and for an admin names a tenant with nothing in it (never all tenants)", async () => {
    for (const tenantId of ["' OR 1=1 --", `${TENANT}' OR '1'='1`, "{p0:String}", "%", "*", `${TENANT}\u0000`]) {
      const denied = await search({ filter: { tenantId } });
      expectConnectError(denied, "permission_denied", show(tenantId));
      expectNoSqlLeak(denied.json.message, [tenantId, TENANT]);
      // An admin may name any tenant: this one has no events (or, where tenants are registered, does not exist).
      const asAdmin = await search({ filter: { tenantId } }, admin);
      if (asAdmin.status === 200) expect(asAdmin.json.events ?? [], show(tenantId)).toEqual([]);
      else {
        expectConnectError(asAdmin, "not_found", show(tenantId));
        expectNoSqlLeak(asAdmin.json.message, [tenantId]);
      }
    }
  });
});

describe("the query language", () => {
  it("field:\"quoted value\" finds exactly the events holding the value, for every string field", async () => {
    // actor and attr.v alone; the other string fields together (ANDed: any one mangled loses the event);
    // type and id, which no event holds a hostile value in.
    const queries: [string, (s: string) => string[]][] = [
      ["actor:S attr.batch:inj", holding],
      ["attr.v:S attr.batch:inj", holding],
      ["session:S resource:S resource_type:S source:S request:S actor_type:S attr.batch:inj", holding],
      ["(type:S OR id:S) attr.batch:inj", () => []],
    ];
    const checks = NASTY.flatMap((s) =>
      queries.map(([template, want]) => {
        const query = template.replace(/:S\b/g, () => `:${quoted(s)}`);
        return { label: `query ${template} with S = ${show(s)}`, run: () => idsOf({ query }), want: want(s) };
      }),
    );
    await expectAllExact(checks);
  });

  it('a quoted phrase, and a bare single-token term, mean what EventFilter.text means', async () => {
    const phrases = NASTY.filter((s) => quoted(s).length <= 2000).map((s) => ({
      label: `query phrase ${show(s)}`,
      run: () => idsOf({ query: `${quoted(s)} attr.batch:inj` }),
      want: textExpected(s),
    }));
    // One token: no whitespace, parentheses, quotes or colon, not starting with "-"; a text term.
    const bare = ["'OR'1'='1", "1;DROP", "\\", "'--", "%", "a\u0000b", "*", "';", "\\\\'", "UNION/**/SELECT", "{p0", "é", "a\u200bb"].map((s) => ({
      label: `query bare ${show(s)}`,
      run: () => idsOf({ query: `${s} attr.batch:inj` }),
      want: textExpected(s),
    }));
    await expectAllExact([...phrases, ...bare]);
  });

  it("hostile queries the grammar does not accept are INVALID_ARGUMENT with the position, and no SQL", async () => {
    const refused = [
      "{p0:String}",
      "{p0:String}') OR 1=1 --",
      "type:x' OR (1=1",
      '"unterminated \' OR 1=1 --',
      "actor:",
      "severity:>=' OR 1=1",
      "outcome:' OR 1=1",
      "since:';DROP",
      "until:1970-01-01T00:00:00Z'",
      "attr.amount:>1e999",
      "attr.amount:>' OR 1=1 --",
      "id:a*",
      "tenant:other",
      "tenant_id:other",
      "events.tenant_id:x",
      "NOT",
      "x OR",
      ")",
      `${"(".repeat(40)}x${")".repeat(40)}`,
      Array.from({ length: 101 }, (_, i) => `w${i}`).join(" "),
      "x".repeat(2049),
      "' OR 1=1 -- ".repeat(10_000),
    ];
    for (const query of refused) {
      const res = await search({ filter: { query } });
      expectInvalid(res, [query], `query ${show(query)}`);
      expect(res.json.message, show(query)).toMatch(/^query: .* at position \d+$/s);
    }
  });

  it("hostile queries the grammar accepts stay inside the tenant and are answered, never an error from the store", async () => {
    const accepted = ["' OR 1=1 --", "'; DROP TABLE events; --", "x' UNION SELECT * FROM events --", "a OR 1=1", "NOT ' OR x", "\\' OR \\'1\\'=\\'1", "%' OR '%'='"];
    for (const query of accepted) {
      const res = await search({ filter: { query }, pageSize: 1000 });
      expect(res.status, `${show(query)}: ${res.text.slice(0, 300)}`).toBe(200);
      for (const e of res.json.events ?? []) expect(e.tenantId).toBe(TENANT);
    }
  });

  it("?q= on the download finds exactly what the RPC finds, and refuses what it refuses", async () => {
    const checks = NASTY.filter((s) => quoted(s).length < 1000).flatMap((s) => [
      {
        label: `?q=actor:${show(s)}`,
        run: async () => {
          const res = await get(server.baseUrl, `/v1/export?attr.batch=inj&q=${encodeURIComponent(`actor:${quoted(s)}`)}`, auditor);
          if (res.status !== 200) return `HTTP ${res.status}: ${res.text.slice(0, 200)}`;
          return res.text.split("\n").filter(Boolean).map((l) => JSON.parse(l).id).sort();
        },
        want: holding(s),
      },
      {
        label: `?actor_id=${show(s)}`,
        run: async () => {
          const res = await get(server.baseUrl, `/v1/export?attr.batch=inj&actor_id=${encodeURIComponent(s)}`, auditor);
          if (res.status !== 200) return `HTTP ${res.status}: ${res.text.slice(0, 200)}`;
          return res.text.split("\n").filter(Boolean).map((l) => JSON.parse(l).id).sort();
        },
        want: holding(s),
      },
    ]);
    await expectAllExact(checks);
    for (const q of ["{p0:String}", "type:x' OR (1=1", "x".repeat(3000)]) {
      const res = await get(server.baseUrl, `/v1/export?q=${encodeURIComponent(q)}`, auditor);
      expectInvalid(res, [q], `?q=${show(q)}`);
    }
  });
});

describe("ids, correlation ids, page tokens and cursors", () => {
  it("GetEvent takes a hostile id as an id: NOT_FOUND, no SQL in the message", async () => {
    for (const id of NASTY) {
      const res = await callJson(server.baseUrl, RPC.get, { id }, auditor);
      expectConnectError(res, "not_found", show(id));
      expectNoSqlLeak(res.json.message, [id, TENANT], show(id));
    }
  });

  it("GetTimeline finds exactly the events of a hostile request id or session id", async () => {
    const problems: string[] = [];
    await inParallel(NASTY, 6, async (s) => {
      for (const body of [{ requestId: s }, { sessionId: s }]) {
        const res = await callJson(server.baseUrl, RPC.timeline, body, auditor);
        const got = res.status === 200 ? (res.json.events ?? []).map((e: any) => e.id).sort() : `HTTP ${res.status} ${res.text.slice(0, 200)}`;
        if (JSON.stringify(got) !== JSON.stringify(holding(s))) problems.push(`${JSON.stringify(Object.keys(body))} ${show(s)}: ${JSON.stringify(got)}`);
      }
    });
    expect(problems).toEqual([]);
  });

  it("a page token edited to carry SQL is a value: the page stays in the tenant; a malformed one is INVALID_ARGUMENT", async () => {
    const first = await search({ filter: { attributes: BATCH }, pageSize: 5 });
    const body = JSON.parse(Buffer.from(first.json.nextPageToken, "base64url").toString());
    for (const [i, value] of [[3, "' OR 1=1 --"], [4, "' OR tenant_id != '"], [3, "{p0:String}"]] as const) {
      const edited = [...body];
      edited[i] = value;
      const res = await search({ filter: { attributes: BATCH }, pageSize: 1000, pageToken: Buffer.from(JSON.stringify(edited)).toString("base64url") });
      expect(res.status, res.text).toBe(200);
      for (const e of res.json.events ?? []) expect(e.tenantId).toBe(TENANT);
    }
    for (const pageToken of ["' OR 1=1 --", Buffer.from('[1,"x\' OR 1=1"]').toString("base64url"), "{p0:String}", "x".repeat(100_000)]) {
      expectInvalid(await search({ pageToken }), [pageToken], `page token ${show(pageToken)}`);
    }
  });

  it("a tail cursor edited to carry SQL replays only the tenant's events", async () => {
    const cursor = Buffer.from(JSON.stringify([1, 0, "' OR 1=1 --", "{p0:String}"])).toString("base64url");
    const tail = connectTail(connectClients(server.baseUrl, "grpc"), auditor, { filter: { attributes: BATCH }, cursor });
    await tail.collector.until((c) => c.live);
    tail.close();
    expect(tail.collector.events.map((e) => e.id).sort()).toEqual(ALL.map((e) => e.id).sort());
  });
});

describe("hostile values in the fields writes check are rejected per event, with no SQL in the reason", () => {
  it("id, type, action and attribute keys", async () => {
    const sql = ["' OR 1=1 --", "'; DROP TABLE events; --", "{p0:String}", "x\u0000y", "a b"];
    const events = sql.flatMap((s, i) => [
      { ...storedEvent({ id: `rej-id-${i}`, s: "ok" }), id: s },
      { ...storedEvent({ id: `rej-type-${i}`, s: "ok" }), type: s },
      { ...storedEvent({ id: `rej-action-${i}`, s: "ok" }), action: s },
      { ...storedEvent({ id: `rej-key-${i}`, s: "ok" }), attributes: { [s]: "v" } },
    ]);
    const res = await callJson(server.baseUrl, RPC.append, { events }, writer);
    expect(res.status, res.text).toBe(200);
    expect(res.json.acceptedCount ?? "0").toBe("0");
    expect(res.json.rejections.map((r: any) => r.field)).toEqual(sql.flatMap(() => ["id", "type", "action", "attributes"]));
    for (const [n, r] of res.json.rejections.entries()) {
      expect(r.code).toBe("invalid_argument");
      expectNoSqlLeak(r.reason, [sql[Math.floor(n / 4)]], `rejection ${n}`);
    }
  });
});

describe("very long inputs", () => {
  const long = "' OR 1=1 -- ".repeat(9000).slice(0, 100 * 1024);

  it("are refused with INVALID_ARGUMENT and the limit, in every filter field", async () => {
    const filters: Record<string, unknown>[] = [
      { types: [long] },
      { actions: [long] },
      { actorIds: [long] },
      { resourceIds: [long] },
      { sources: [long] },
      { resourceType: long },
      { requestId: long },
      { attributes: { [long]: "x" } },
      { attributes: { k: long } },
      { text: long },
      { query: long },
      { actorIds: Array.from({ length: 101 }, (_, i) => `a${i}`) },
      { attributes: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"])) },
    ];
    for (const filter of filters) {
      const res = await search({ filter });
      expectInvalid(res, [long], Object.keys(filter).join());
      expect(res.json.message, Object.keys(filter).join()).toMatch(/limit|longer than/);
      expect(res.json.message.length).toBeLessThan(1000);
    }
  });

  it("in an event are rejected per field with the limit", async () => {
    const res = await callJson(server.baseUrl, RPC.append, {
      events: [
        { ...storedEvent({ id: "long-1", s: "ok" }), message: long },
        { ...storedEvent({ id: "long-2", s: "ok" }), actor: { id: long } },
        { ...storedEvent({ id: "long-3", s: "ok" }), attributes: { v: long } },
        { ...storedEvent({ id: "long-4", s: "ok" }), requestId: long },
      ],
    }, writer);
    expect(res.status).toBe(200);
    expect(res.json.rejections.map((r: any) => r.field)).toEqual(["message", "actor.id", 'attributes["v"]', "request_id"]);
    for (const r of res.json.rejections) expect(r.reason).toMatch(/bytes; the limit is \d+$/);
  });

  it("as a GetEvent id, a timeline id or a page token are refused or not found, never a store error", async () => {
    const answers = [
      await callJson(server.baseUrl, RPC.get, { id: long }, auditor),
      await callJson(server.baseUrl, RPC.timeline, { requestId: long }, auditor),
      await search({ pageToken: long }),
    ];
    for (const res of answers) {
      expect([200, 400, 404], res.text.slice(0, 200)).toContain(res.status);
      if (res.status !== 200) expectNoSqlLeak(res.json.message, [long]);
      else expect(res.json.events ?? []).toEqual([]);
    }
  });

  it("a refused read with a long id or a long group_by is still on record (its audit event clipped, not lost)", async () => {
    // Audit events commit in order: once a later read's event is in, so is the long one's, if it was recorded.
    const tail = connectTail(connectClients(server.baseUrl, "grpc"), auditor, { filter: { query: "request:inj-long-read OR request:inj-sentinel" } });
    await tail.collector.until((c) => c.live);
    const longId = "L".repeat(5000);
    // Longer than any stored id: refused before the store (INVALID_ARGUMENT), and recorded.
    expectConnectError(await callJson(server.baseUrl, RPC.get, { id: longId }, auditor, { "x-request-id": "inj-long-read" }), "invalid_argument");
    // 1,000 group_by dimensions: refused (a dimension twice), and recorded like any refused read.
    const stats = await callJson(server.baseUrl, RPC.stats, { groupBy: Array.from({ length: 1000 }, () => "STATS_DIMENSION_TYPE") }, auditor, { "x-request-id": "inj-long-read" });
    expectConnectError(stats, "invalid_argument");
    await callJson(server.baseUrl, RPC.get, { id: "short" }, auditor, { "x-request-id": "inj-sentinel" });
    await tail.collector.until((c) => c.events.some((e) => e.requestId === "inj-sentinel"));
    tail.close();
    expect(tail.collector.events.map((e) => [e.requestId, e.type, e.outcome])).toEqual([
      ["inj-long-read", "auditlog.read.get", "OUTCOME_FAILURE"],
      ["inj-long-read", "auditlog.read.stats", "OUTCOME_FAILURE"],
      ["inj-sentinel", "auditlog.read.get", "OUTCOME_FAILURE"],
    ]);
  });

  it("in the download's query string are refused before any query (400, or 431 past Node's header limit)", async () => {
    const res = await get(server.baseUrl, `/v1/export?q=${encodeURIComponent(long)}`, auditor);
    expect([400, 431]).toContain(res.status);
    if (res.status === 400) expectInvalid(res, [long], "?q=100KB");
  });
});

describe("prototype-shaped attribute keys", () => {
  it("keys named like Object members (constructor, toString, hasOwnProperty) are stored and found like any other", async () => {
    const keys = ["constructor", "toString", "hasOwnProperty", "valueOf"];
    const res = await callJson(server.baseUrl, RPC.append, { events: [{ ...storedEvent({ id: "proto-members", s: "ok" }), attributes: Object.fromEntries(keys.map((k) => [k, `v-${k}`])) }] }, writer);
    expect(res.json.acceptedCount).toBe("1");
    for (const k of keys) expect(await idsOf({ attributes: { [k]: `v-${k}` } }), k).toEqual(["proto-members"]);
    const got = await callJson(server.baseUrl, RPC.get, { id: "proto-members" }, auditor);
    expect(got.json.event.attributes).toEqual(Object.fromEntries(keys.map((k) => [k, `v-${k}`])));
  });

  it('an attribute "__proto__" is stored and read back, or refused, never silently dropped', async () => {
    const res = await callJson(server.baseUrl, RPC.append, { events: [{ ...storedEvent({ id: "proto-key", s: "ok" }), attributes: JSON.parse('{"__proto__": "polluted", "batch": "proto"}') }] }, writer);
    if (res.status === 400) {
      // Refused whole, naming the key: the JSON body never reaches the runtime that would drop it.
      expect(res.json).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("__proto__") });
      return;
    }
    expect(res.status).toBe(200);
    if ((res.json.acceptedCount ?? "0") === "1") {
      const got = await callJson(server.baseUrl, RPC.get, { id: "proto-key" }, auditor);
      expect(Object.entries(got.json.event.attributes).sort()).toEqual([
        ["__proto__", "polluted"],
        ["batch", "proto"],
      ]);
    } else {
      expect(res.json.rejections).toEqual([expect.objectContaining({ field: "attributes", code: "invalid_argument" })]);
    }
  });

  it('in binary protobuf, an event with the attribute "__proto__" is rejected alone, naming the key, not stored without it', async () => {
    const events = [
      create(EventSchema, { ...storedEvent({ id: "proto-bin", s: "ok" }), attributes: JSON.parse('{"__proto__": "polluted", "batch": "proto-bin"}') }),
      create(EventSchema, { ...storedEvent({ id: "proto-bin-ok", s: "ok" }), attributes: { batch: "proto-bin" } }),
    ];
    const body = toBinary(AppendRequestSchema, create(AppendRequestSchema, { events }));
    // protobuf-es writes the own key "__proto__" like any other; the bytes carry it.
    expect(Buffer.from(body).includes(Buffer.from("__proto__"))).toBe(true);
    const res = await fetch(`${server.baseUrl}/${RPC.append}`, { method: "POST", headers: { "content-type": "application/proto", authorization: `Bearer ${writer}` }, body });
    expect(res.status).toBe(200);
    const answer = fromBinary(AppendResponseSchema, new Uint8Array(await res.arrayBuffer()));
    expect(answer.acceptedCount).toBe(1n);
    expect(answer.rejections).toEqual([expect.objectContaining({ index: 0n, code: "invalid_argument", reason: expect.stringContaining('"__proto__" is not accepted') })]);
    expect((await callJson(server.baseUrl, RPC.get, { id: "proto-bin" }, auditor)).status).toBe(404);
    expect((await callJson(server.baseUrl, RPC.get, { id: "proto-bin-ok" }, auditor)).json.event.attributes).toEqual({ batch: "proto-bin" });
  });

  it('SearchEvents with a filter on attribute "__proto__" applies it (matching nothing here) or refuses it, never drops it to match everything', async () => {
    const rpc = await callJson(server.baseUrl, RPC.search, `{"filter": {"attributes": {"__proto__": "no-such-value"}}, "pageSize": 1000}`, auditor);
    if (rpc.status === 200) expect(rpc.json.events ?? [], "SearchEvents widened to every event").toEqual([]);
    else expectInvalid(rpc, [], "SearchEvents");
  });

  it('a binary SearchEvents filter on "__proto__" is refused, plain, or compressed per message over gRPC', async () => {
    const request = { filter: { attributes: JSON.parse('{"__proto__": "no-such-value"}') as Record<string, string> }, pageSize: 1000 };
    const body = toBinary(SearchEventsRequestSchema, create(SearchEventsRequestSchema, request));
    // protobuf-es writes the own key like any other; it only drops it when decoding.
    expect(Buffer.from(body).includes(Buffer.from("__proto__"))).toBe(true);
    const res = await fetch(`${server.baseUrl}/${RPC.search}`, { method: "POST", headers: { "content-type": "application/proto", authorization: `Bearer ${auditor}` }, body });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining('"__proto__" is not accepted') });

    const gzipped = createClient(QueryService, createGrpcTransport({ baseUrl: server.baseUrl, sendCompression: compressionGzip, compressMinBytes: 0 }));
    await expect(gzipped.searchEvents(request, bearer(auditor))).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringContaining('"__proto__" is not accepted') });
  });

  it('a gzip-compressed JSON body with the key "__proto__" is refused like a plain one, storing nothing', async () => {
    const text = `{"events": [${JSON.stringify({ ...storedEvent({ id: "proto-gz", s: "ok" }), attributes: { batch: "proto-gz" } }).replace('"attributes":{', '"attributes":{"__proto__":"polluted",')}]}`;
    expect(text).toContain('"__proto__":"polluted"');
    const res = await fetch(`${server.baseUrl}/${RPC.append}`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${writer}` },
      body: gzipSync(text),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining('"__proto__" is not accepted') });
    expect((await callJson(server.baseUrl, RPC.get, { id: "proto-gz" }, auditor)).status).toBe(404);
  });

  it('the download with attr.__proto__= applies it (matching nothing here) or refuses it, never drops it to export everything', async () => {
    const download = await get(server.baseUrl, "/v1/export?attr.__proto__=no-such-value", auditor);
    if (download.status === 200) expect(download.text.split("\n").filter(Boolean).length, "the download widened to every event").toBe(0);
    else expectInvalid(download, [], "/v1/export");
  });
});

describe("afterwards", () => {
  it("the server is healthy, every stored event is still there, and the chain verifies", async () => {
    expect(await healthz(server.baseUrl)).toBe(200);
    expect(await idsOf({ attributes: BATCH })).toEqual(ALL.map((e) => e.id).sort());
    const { integrity, query } = connectClients(server.baseUrl, "grpc");
    const verified = await integrity.verifyChain({}, bearer(auditor));
    expect(verified.ok).toBe(true);
    const stored = await idsOf({ types: ["inj.event"] });
    expect(stored).toEqual(expect.arrayContaining(ALL.map((e) => e.id)));
    const stats = await query.getStats({ filter: { types: ["inj.event"] } }, bearer(auditor));
    expect(Number(stats.total)).toBe(stored.length);
  });
});
