import { Session } from "chdb";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Event } from "../../gen/auditlog/v1/event_pb.js";
import { textTermPredicate } from "../../src/query/text-term.ts";
import { recordFromEvent } from "../../src/store/event-row.ts";
import { appendAll, searchAllJson } from "../helpers/bulk.ts";
import { connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, tempDataDir, type TestServer } from "../helpers/server.ts";

const dataDir = tempDataDir();
let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let auditor: string;

/** Messages and attribute values that tell word, phrase and substring semantics apart. */
const EVENTS: Event[] = (<{ message: string; attributes?: Record<string, string> }[]>[
  { message: "Card DECLINED by issuer" },
  { message: "undeclined payment" },
  { message: "Zahlung für Müller abgelehnt" },
  { message: "login ok", attributes: { email: "Jane.Doe@Example.com", order: "ord-4711" } },
  { message: "card was declined" },
  { message: "price: 100% @ checkout" },
  { message: "nothing to see", attributes: { reason: "card declined twice" } },
  { message: "split across fields", attributes: { a: "card", b: "declined" } },
  { message: "punctuation only", attributes: { mark: "--", blank: "" } },
  { message: "beyond ASCII", attributes: { city: "Zürich-8001", dash: "—" } },
]).map((fields, n) => sampleEvent(n, { id: `ft-${n}`, source: "fulltext", ...fields }));

async function start() {
  server = await startServer({ dataDir });
  clients = connectClients(server.baseUrl, "connect-binary");
  auditor = await server.token("ft", ["auditor"]);
}

beforeAll(async () => {
  await start();
  await appendAll(clients, await server.token("ft", ["writer"]), EVENTS);
});
afterAll(async () => {
  await server.stop();
  removeDataDir(dataDir);
});

const searchText = async (how: "query" | "text", term: string, source = "fulltext") => {
  const filter = how === "query" ? { query: term.includes(" ") ? JSON.stringify(term) : term } : { text: term };
  return (await searchAllJson(clients, auditor, { sources: [source], ...filter })).map((e) => e.id as string).sort();
};
const ids = (...ns: number[]) => ns.map((n) => `ft-${n}`).sort();

const CASES: [string, string[]][] = [
  ["declined", ids(0, 4, 6, 7)],
  ["DECLINED", ids(0, 4, 6, 7)],
  ["declin", []],
  ["card declined", ids(0, 6)],
  ["müller", ids(2)],
  ["MÜLLER", ids(2)],
  ["jane.doe@example.com", ids(3)],
  ["4711", ids(3)],
  ["ord-4711", ids(3)],
  ["%", ids(5)],
  ["@", ids(3, 5)],
];

/**
 * Attribute equality, which the attribute-value text index narrows first when
 * the value has words: still exact, case and all, and one value only.
 */
const ATTRIBUTE_CASES: [Record<string, string>, string[]][] = [
  [{ order: "ord-4711" }, ids(3)],
  [{ order: "ORD-4711" }, []],
  [{ order: "4711" }, []],
  [{ email: "Jane.Doe@Example.com" }, ids(3)],
  [{ reason: "card declined twice" }, ids(6)],
  [{ reason: "declined twice card" }, []],
  // Both words are in the event's values, but not in this one.
  [{ a: "card declined" }, []],
  [{ a: "card", b: "declined" }, ids(7)],
  [{ mark: "--" }, ids(8)],
  [{ blank: "" }, ids(8)],
  [{ mark: "" }, []],
  [{ city: "Zürich-8001" }, ids(9)],
  [{ city: "zürich-8001" }, []],
  [{ dash: "—" }, ids(9)],
];
const searchAttributes = async (how: "query" | "filter", attributes: Record<string, string>, source = "fulltext") => {
  const filter = how === "filter" ? { attributes } : { query: Object.entries(attributes).map(([k, v]) => `attr.${k}:${JSON.stringify(v)}`).join(" ") };
  return (await searchAllJson(clients, auditor, { sources: [source], ...filter })).map((e) => e.id as string).sort();
};

describe("attribute equality", () => {
  it.each(ATTRIBUTE_CASES)("%j (EventFilter.attributes and attr.<key>:\"…\" alike)", async (attributes, want) => {
    expect(await searchAttributes("filter", attributes)).toEqual(want);
    expect(await searchAttributes("query", attributes)).toEqual(want);
  });
});

describe("attribute inequality", () => {
  it("-attr.<key>:\"…\" keeps every event without that exact value", async () => {
    const found = (await searchAllJson(clients, auditor, { sources: ["fulltext"], query: '-attr.order:"ord-4711"' })).map((e) => e.id as string).sort();
    expect(found).toEqual(EVENTS.map((e) => e.id).filter((id) => id !== "ft-3").sort());
  });
});

describe("full-text terms", () => {
  it.each(CASES)("%s (a query term and EventFilter.text alike)", async (term, want) => {
    expect(await searchText("query", term)).toEqual(want);
    expect(await searchText("text", term)).toEqual(want);
  });

  it("the live tail's predicate agrees with SQL on every case", () => {
    for (const [term, want] of CASES) {
      const matches = textTermPredicate(term);
      expect(EVENTS.filter((e) => matches(recordFromEvent(e))).map((e) => e.id).sort(), term).toEqual(want);
    }
  });

  it("a store from before the text indexes gets them on start, built for old parts too, with the same answers", async () => {
    await server.stop();
    const session = new Session(join(dataDir, "chdb"));
    const indexes = () => session.query("SELECT name FROM system.data_skipping_indices WHERE table = 'events' AND type = 'text' ORDER BY name", "CSV").trim();
    try {
      expect(indexes()).toBe('"idx_attribute_words"\n"idx_message_words"');
      session.query("ALTER TABLE events DROP INDEX idx_message_words");
      session.query("ALTER TABLE events DROP INDEX idx_attribute_words");
      expect(indexes()).toBe("");
    } finally {
      session.close();
    }
    await start();
    for (const [term, want] of CASES) expect(await searchText("query", term), term).toEqual(want);
    for (const [attributes, want] of ATTRIBUTE_CASES) expect(await searchAttributes("filter", attributes), JSON.stringify(attributes)).toEqual(want);
    await server.stop();
    const reopened = new Session(join(dataDir, "chdb"));
    try {
      expect(reopened.query("SELECT name FROM system.data_skipping_indices WHERE table = 'events' AND type = 'text' ORDER BY name", "CSV").trim()).toBe(
        '"idx_attribute_words"\n"idx_message_words"',
      );
      // The build of the old parts ran as a mutation and finished.
      expect(reopened.query("SELECT countIf(NOT is_done) FROM system.mutations WHERE table = 'events'", "CSV").trim()).toBe("0");
    } finally {
      reopened.close();
    }
    await start();
  });

  it("inserts leave the text indexes to the merges: the same answers from a part without them and from the merged part with them", async () => {
    // The events again under new ids, in parts no merge may take.
    const fresh = EVENTS.map((e, n) => ({ ...e, id: `fresh-${n}`, source: "fresh" }));
    const freshIds = (want: string[]) => want.map((id) => id.replace("ft-", "fresh-")).sort();
    const textIndexFiles = (session: Session) =>
      session
        .query("SELECT path, level FROM system.parts WHERE active AND table = 'events'", "JSONEachRow")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { path: string; level: number })
        .map((part) => ({ level: part.level, files: readdirSync(part.path).filter((f) => /^skp_idx_idx_(message|attribute)_words\.idx$/.test(f)).sort() }));
    const answers = async () => {
      for (const [term, want] of CASES) expect(await searchText("query", term, "fresh"), term).toEqual(freshIds(want));
      for (const [attributes, want] of ATTRIBUTE_CASES) expect(await searchAttributes("filter", attributes, "fresh"), JSON.stringify(attributes)).toEqual(freshIds(want));
    };

    await server.stop();
    let session = new Session(join(dataDir, "chdb"));
    try {
      session.query("OPTIMIZE TABLE events FINAL");
      session.query("ALTER TABLE events MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1");
    } finally {
      session.close();
    }
    await start();
    await appendAll(clients, await server.token("ft", ["writer"]), fresh);
    await answers();
    await server.stop();
    session = new Session(join(dataDir, "chdb"));
    try {
      const inserted = textIndexFiles(session).filter((p) => p.level === 0);
      expect(inserted.length).toBeGreaterThan(0);
      for (const part of inserted) expect(part.files).toEqual([]);
      session.query("ALTER TABLE events RESET SETTING max_bytes_to_merge_at_max_space_in_pool");
      session.query("OPTIMIZE TABLE events FINAL");
      const merged = textIndexFiles(session);
      expect(merged.every((p) => p.level > 0)).toBe(true);
      for (const part of merged) expect(part.files).toEqual(["skp_idx_idx_attribute_words.idx", "skp_idx_idx_message_words.idx"]);
    } finally {
      session.close();
    }
    await start();
    await answers();
  });
});
