import type { JsonObject } from "@bufbuild/protobuf";
import { parse as parseCsv } from "csv-parse/sync";
import { parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExportFormat } from "../../gen/auditlog/v1/query_pb.js";
import { appendAll, searchAllJson } from "../helpers/bulk.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";

const TOTAL = 30_000;
const SOURCE = "export-test";

let server: TestServer;
let auditor: string;
let clients: ReturnType<typeof connectClients>;
/** The events as SearchEvents returns them, oldest first: what every export must equal. */
let expected: JsonObject[];

/** Content that breaks naive CSV and JSON writers. */
const MESSAGES = ['a "quoted", comma', "two\nlines\r\nand CRLF", "ünïcödé 日本語 🎉", "back\\slash\ttab", "", "plain"];

function exportEvent(n: number) {
  return sampleEvent(n, {
    id: `x-${String(n).padStart(6, "0")}`,
    source: SOURCE,
    message: MESSAGES[n % MESSAGES.length],
    attributes: n % 4 === 0 ? { seq: String(n), note: 'has "quotes", commas' } : { seq: String(n), [`k${n % 3}`]: `v${n}` },
    before: n % 5 === 0 ? { status: "open", nested: { list: [1, "two", null] } } : undefined,
    after: n % 5 === 0 ? { status: "closed" } : undefined,
    resource: n % 6 === 0 ? undefined : { type: "account", id: `acct-${n % 17}` },
  });
}

beforeAll(async () => {
  server = await startServer();
  const writer = await server.token("exp", ["writer"]);
  auditor = await server.token("exp", ["auditor"]);
  clients = connectClients(server.baseUrl, "grpc");
  await appendAll(clients, writer, Array.from({ length: TOTAL }, (_, n) => exportEvent(n)));
  await appendAll(clients, await server.token("other", ["writer"]), Array.from({ length: 50 }, (_, n) => sampleEvent(n, { source: SOURCE })));
  const newestFirst = await searchAllJson(clients, auditor, { sources: [SOURCE] });
  expected = newestFirst.reverse();
}, 120_000);
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

const download = (query: string, token = auditor, init: RequestInit = {}) =>
  fetch(`${server.baseUrl}/v1/export?${query}`, { ...init, headers: { authorization: `Bearer ${token}` } });

describe("GET /v1/export", () => {
  it("NDJSON: one Event per line, exactly the JSON SearchEvents returns, oldest first", async () => {
    const res = await download(`format=ndjson&source=${SOURCE}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="auditlog-exp-\d{8}T\d{6}Z\.ndjson"$/);
    const lines = (await res.text()).split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(TOTAL);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed).toEqual(expected);
  });

  it("CSV: RFC 4180 with a header, nested fields dotted, one column per attribute key", async () => {
    const res = await download(`format=csv&source=${SOURCE}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
    const text = await res.text();
    expect(text.startsWith('"id","tenant_id","time","utc_offset_minutes","type","action","outcome","severity","actor.id"')).toBe(true);
    expect(text.endsWith("\r\n")).toBe(true);
    const rows: Record<string, string>[] = parseCsv(text, { columns: true, relax_quotes: false });
    expect(rows).toHaveLength(TOTAL);
    const header = Object.keys(rows[0]);
    expect(header.filter((h) => h.startsWith("attributes."))).toEqual(["attributes.k0", "attributes.k1", "attributes.k2", "attributes.note", "attributes.seq"]);
    rows.forEach((row, i) => {
      const e = expected[i] as any;
      expect(row.id).toBe(e.id);
      expect(row.time).toBe(e.time);
      expect(row.received_at).toBe(e.receivedAt);
      expect(row.message).toBe(e.message ?? "");
      expect(row["actor.id"]).toBe(e.actor.id);
      expect(row["resource.id"]).toBe(e.resource?.id ?? "");
      expect(row.outcome).toBe(e.outcome ? e.outcome.replace("OUTCOME_", "") : "");
      expect(row.severity).toBe(e.severity.replace("SEVERITY_", ""));
      expect(row.before ? JSON.parse(row.before) : undefined).toEqual(e.before);
      for (const key of ["k0", "k1", "k2", "note", "seq"]) expect(row[`attributes.${key}`]).toBe(e.attributes[key] ?? "");
    });
  });

  it("Parquet: written by ClickHouse, typed columns that a Parquet reader reads back", async () => {
    const res = await download(`format=parquet&source=${SOURCE}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.apache.parquet");
    const file = await res.arrayBuffer();
    const rows: any[] = await parquetReadObjects({ file, compressors });
    expect(rows).toHaveLength(TOTAL);
    rows.forEach((row, i) => {
      const e = expected[i] as any;
      expect(row.id).toBe(e.id);
      expect(row.tenant_id).toBe("exp");
      // Parquet keeps microseconds; a JS Date shows milliseconds.
      expect((row.time as Date).getTime()).toBe(Math.floor(Date.parse(e.time)));
      expect(row.message).toBe(e.message ?? "");
      expect(row.attributes).toEqual(e.attributes);
      expect(row.actor.id).toBe(e.actor.id);
      expect(row.resource.type).toBe(e.resource?.type ?? "");
      expect(row.after ? JSON.parse(row.after) : undefined).toEqual(e.after);
    });
  });

  it("filters with the EventFilter's fields as parameters; never another tenant's events", async () => {
    const res = await download(`type=auth.login&type=order.viewed&attr.note=${encodeURIComponent('has "quotes", commas')}&source=${SOURCE}`);
    const got = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    const want = expected.filter((e: any) => ["auth.login", "order.viewed"].includes(e.type) && e.attributes?.note);
    expect(want.length).toBeGreaterThan(100);
    expect(got).toEqual(want);
    expect(got.every((e) => e.tenantId === "exp")).toBe(true);
  });

  it("admins export every tenant at once, ordered by tenant", async () => {
    const admin = await server.token("", ["admin"]);
    const res = await download(`source=${SOURCE}`, admin);
    expect(res.headers.get("content-disposition")).toContain("auditlog-all-tenants-");
    const tenants = (await res.text()).trim().split("\n").map((l) => JSON.parse(l).tenantId);
    expect(tenants).toHaveLength(TOTAL + 50);
    expect(tenants.indexOf("other")).toBe(TOTAL);
  });

  it.each([
    ["no token", "format=csv", "", 401, "unauthenticated", /Authorization: Bearer/],
    ["a writer token", "format=csv", "writer", 403, "permission_denied", /requires the role user or auditor or admin/],
    ["another tenant", "tenant_id=other", "auditor", 403, "permission_denied", /only admins may read other tenants/],
    ["an unknown format", "format=xlsx", "auditor", 400, "invalid_argument", /format must be one of ndjson, csv, parquet/],
    ["a malformed time", "start_time=yesterday", "auditor", 400, "invalid_argument", /RFC 3339/],
    ["an unknown parameter", "tpye=x", "auditor", 400, "invalid_argument", /unknown query parameter "tpye"/],
    ["a malformed query", "q=type:x%20(", "auditor", 400, "invalid_argument", /query: expected a term at position 9/],
    ["an unknown outcome", "outcome=MAYBE", "auditor", 400, "invalid_argument", /outcome must be one of SUCCESS, FAILURE/],
    ["a formula-safe flag that is not true or false", "format=csv&csv_formula_safe=yes", "auditor", 400, "invalid_argument", /csv_formula_safe must be given once, as true or false/],
    ["a formula-safe flag on another format", "format=ndjson&csv_formula_safe=true", "auditor", 400, "invalid_argument", /csv_formula_safe applies to CSV exports only, not ndjson/],
  ])("refuses %s with a clear JSON error", async (_, query, who, status, code, message) => {
    const token = who === "writer" ? await server.token("exp", ["writer"]) : who === "auditor" ? auditor : "";
    const res = await fetch(`${server.baseUrl}/v1/export?${query}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect(res.status).toBe(status);
    const body = await res.json();
    expect(body.code).toBe(code);
    expect(body.message).toMatch(message);
  });

  it("a client that goes away cancels the query; the server keeps serving", async () => {
    const abort = new AbortController();
    const res = await download("format=ndjson", auditor, { signal: abort.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.value!.byteLength).toBeGreaterThan(0);
    abort.abort();
    const cancelled = await server.waitForLog((e) => e.msg === "export cancelled: the client went away");
    const full = Buffer.byteLength(await (await download("format=ndjson")).text());
    expect(cancelled.bytes as number).toBeLessThan(full);

    // The export's own audit event says how it ended.
    const reads = await searchAllJson(clients, auditor, { types: ["auditlog.read.export"], attributes: { ended: "cancelled" } });
    expect(reads).toHaveLength(1);
    expect(Number((reads[0].attributes as any).bytes)).toBeLessThan(full);
  });
});

describe("CSV for spreadsheets (csv_formula_safe)", () => {
  const FORMULAS = "formula-test";
  beforeAll(async () => {
    const writer = await server.token("exp", ["writer"]);
    await appendAll(clients, writer, [
      sampleEvent(1, {
        id: "formula-1",
        source: FORMULAS,
        utcOffsetMinutes: -300,
        message: '=HYPERLINK("http://evil.example","click")',
        actor: { id: "+1-555-0100", name: "@SUM(A1:A9)" },
        resource: { type: "account", id: "-2+3", name: "\tcmd" },
        attributes: { amount: "-12.50", note: "\rlead", plain: "a = b", nul: "\u0000cmd" },
      }),
    ]);
  });
  const rows = async (query: string) => parseCsv(await (await download(`format=csv&source=${FORMULAS}${query}`)).text(), { columns: true }) as Record<string, string>[];

  it("quotes every text cell a spreadsheet would evaluate, and only those, when asked", async () => {
    const [safe] = await rows("&csv_formula_safe=true");
    expect(safe).toMatchObject({
      message: `'=HYPERLINK("http://evil.example","click")`,
      "actor.id": "'+1-555-0100",
      "actor.name": "'@SUM(A1:A9)",
      "resource.id": "'-2+3",
      "resource.name": "'\tcmd",
      "attributes.amount": "'-12.50",
      "attributes.note": "'\rlead",
      "attributes.nul": "'\u0000cmd",
      // Not a formula: left alone. Numbers and our own columns are never touched.
      "attributes.plain": "a = b",
      "resource.type": "account",
      utc_offset_minutes: "-300",
      id: "formula-1",
    });
  });

  it("is off by default: an export is the record, verbatim; the RPC takes the same option", async () => {
    const [verbatim] = await rows("");
    expect(verbatim.message).toBe('=HYPERLINK("http://evil.example","click")');
    expect(verbatim["attributes.amount"]).toBe("-12.50");
    const chunks: Uint8Array[] = [];
    const request = { filter: { sources: [FORMULAS] }, format: ExportFormat.CSV, csvFormulaSafe: true };
    for await (const msg of clients.query.exportEvents(request, bearer(auditor))) chunks.push(msg.data);
    expect(Buffer.concat(chunks).toString("utf8")).toBe(await (await download(`format=csv&source=${FORMULAS}&csv_formula_safe=true`)).text());
  });
});

describe("ExportEvents RPC", () => {
  it("streams the same file in chunks of at most 1 MiB; the first message names it", async () => {
    const chunks: Uint8Array[] = [];
    let first: { contentType: string; fileName: string } | undefined;
    for await (const msg of clients.query.exportEvents({ filter: { sources: [SOURCE] }, format: ExportFormat.NDJSON }, bearer(auditor))) {
      first ??= { contentType: msg.contentType, fileName: msg.fileName };
      expect(msg.data.byteLength).toBeLessThanOrEqual(1024 * 1024);
      chunks.push(msg.data);
    }
    expect(first).toEqual({ contentType: "application/x-ndjson", fileName: expect.stringMatching(/^auditlog-exp-.*\.ndjson$/) });
    const text = Buffer.concat(chunks).toString("utf8");
    const viaHttp = await (await download(`source=${SOURCE}`)).text();
    expect(text).toBe(viaHttp);
    expect(chunks.length).toBeGreaterThan(3);
  });

  it("CSV over the RPC equals the download", async () => {
    const chunks: Uint8Array[] = [];
    for await (const msg of clients.query.exportEvents({ filter: { sources: [SOURCE], types: ["auth.login"] }, format: ExportFormat.CSV }, bearer(auditor))) {
      chunks.push(msg.data);
    }
    expect(Buffer.concat(chunks).toString("utf8")).toBe(await (await download(`format=csv&source=${SOURCE}&type=auth.login`)).text());
  });

  it("refuses callers without a reading role", async () => {
    const writer = await server.token("exp", ["writer"]);
    const run = async () => {
      for await (const _ of clients.query.exportEvents({}, bearer(writer))) {
        // never reached
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 7, rawMessage: expect.stringMatching(/requires the role user or auditor or admin/) });
  });
});
