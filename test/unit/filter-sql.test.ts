import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventFilterSchema, Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import type { TenantScope } from "../../src/auth/tenant-scope.ts";
import { AuditlogError } from "../../src/errors.ts";
import { filterConditions, type SqlWhere } from "../../src/query/filter-sql.ts";
import { TIME_LEAD_OVER_RECEIPT_US } from "../../src/store/receipt-lead.ts";

const ACME: TenantScope = { kind: "tenant", tenant: "acme" };
const ALL: TenantScope = { kind: "all" };

const filter = (init: MessageInitShape<typeof EventFilterSchema>) => create(EventFilterSchema, init);
const build = (scope: TenantScope, init?: MessageInitShape<typeof EventFilterSchema>): SqlWhere =>
  filterConditions(scope, init ? filter(init) : undefined).build();

function invalid(scope: TenantScope, init: MessageInitShape<typeof EventFilterSchema>): AuditlogError {
  try {
    build(scope, init);
  } catch (err) {
    expect(err).toBeInstanceOf(AuditlogError);
    expect((err as AuditlogError).kind).toBe("invalid_argument");
    return err as AuditlogError;
  }
  throw new Error("expected filterConditions to reject the filter");
}

/** The placeholder in `sql` whose parameter holds `value`, e.g. `{p2:String}`. */
function placeholderOf(where: SqlWhere, value: unknown): string {
  const name = Object.keys(where.params).find((k) => JSON.stringify(where.params[k]) === JSON.stringify(value));
  if (!name) throw new Error(`no parameter holds ${JSON.stringify(value)}`);
  const match = new RegExp(`\\{${name}:[A-Za-z0-9()]+\\}`).exec(where.sql);
  if (!match) throw new Error(`parameter ${name} is not used in the SQL`);
  return match[0];
}

const at = (iso: string) => timestampFromDate(new Date(iso));

describe("filterConditions: tenant scope", () => {
  it("makes the tenant predicate the first condition", () => {
    const where = build(ACME, { types: ["a.b"], text: "x" });
    expect(where.sql.startsWith("tenant_id = {p0:String} AND ")).toBe(true);
    expect(where.params.p0).toBe("acme");
  });

  it("is the only condition without a filter", () => {
    expect(build(ACME)).toEqual({ sql: "tenant_id = {p0:String}", params: { p0: "acme" } });
  });

  it("has no tenant predicate for every tenant", () => {
    const where = build(ALL, { types: ["a.b"] });
    expect(where.sql).not.toContain("tenant_id");
    expect(Object.values(where.params)).not.toContain("acme");
    expect(where.sql).toBe("type IN {p0:Array(String)}");
  });

  it("matches everything for every tenant and no filter", () => {
    expect(build(ALL)).toEqual({ sql: "1", params: {} });
    expect(build(ALL, {})).toEqual({ sql: "1", params: {} });
  });

  it("passes the tenant as a parameter", () => {
    const where = build({ kind: "tenant", tenant: "x' OR 1=1 --" });
    expect(where.sql).toBe("tenant_id = {p0:String}");
    expect(where.params.p0).toBe("x' OR 1=1 --");
  });
});

describe("filterConditions: values travel only as parameters", () => {
  const hostile = [
    "x' OR 1=1 --",
    "'); DROP TABLE events; --",
    "{p0:String}",
    "{p99:String}",
    "back\\slash\\'",
    'double"quote',
    "new\nline",
    "`tick`",
    "*/ 1 /*",
  ];

  it.each(hostile)("keeps %j out of the SQL text", (value) => {
    const where = build(
      { kind: "tenant", tenant: value },
      {
        types: [value],
        actions: [value],
        actorIds: [value],
        resourceIds: [value],
        sources: [value],
        resourceType: value,
        requestId: value,
        attributes: { [value]: value },
        text: value,
      },
    );
    // Take out the placeholders this module invents and the one constant; nothing a caller sent may remain.
    const skeleton = where.sql.replace(/\{p\d+:[A-Za-z0-9()]+\}/g, "?").replaceAll("'UTC'", "");
    expect(skeleton).not.toMatch(/['"`\\{}\n]|--|\/\*/);
    if (!value.startsWith("{p")) expect(where.sql).not.toContain(value);
    const sent = JSON.stringify(Object.values(where.params));
    expect(sent).toContain(JSON.stringify(value));
    expect(sent).toContain(JSON.stringify(value.toUpperCase()));
  });

  it("uses every parameter in the SQL and no placeholder without a parameter", () => {
    const where = build(ACME, {
      startTime: at("2026-01-01T00:00:00Z"),
      endTime: at("2026-02-01T00:00:00Z"),
      types: ["a"],
      actions: ["b"],
      outcomes: [Outcome.SUCCESS],
      minSeverity: Severity.ERROR,
      actorIds: ["c"],
      resourceType: "d",
      resourceIds: ["e"],
      sources: ["f"],
      requestId: "g",
      attributes: { h: "i", j: "k" },
      text: "l",
    });
    const used = new Set([...where.sql.matchAll(/\{(p\d+):/g)].map((m) => m[1]));
    expect(used).toEqual(new Set(Object.keys(where.params)));
    expect(where.sql.split(" AND ")[0]).toBe("tenant_id = {p0:String}");
  });
});

describe("filterConditions: time range", () => {
  it("adds an inclusive start and an exclusive end in microseconds", () => {
    const where = build(ACME, { startTime: at("2026-01-01T00:00:00Z"), endTime: at("2026-01-02T00:00:00Z") });
    const startUs = Date.UTC(2026, 0, 1) * 1000;
    const endUs = Date.UTC(2026, 0, 2) * 1000;
    expect(where.sql).toContain(`time >= fromUnixTimestamp64Micro(${placeholderOf(where, startUs)}, 'UTC')`);
    expect(where.sql).toContain(`time < fromUnixTimestamp64Micro(${placeholderOf(where, endUs)}, 'UTC')`);
    expect(placeholderOf(where, startUs)).toMatch(/:Int64\}$/);
  });

  it("bounds received_at by the start less the lead an event's time may have over it, for the engine to skip old partitions", () => {
    const startUs = Date.UTC(2026, 0, 1) * 1000;
    const where = build(ACME, { startTime: at("2026-01-01T00:00:00Z") });
    expect(where.sql).toContain(`received_at >= fromUnixTimestamp64Micro(${placeholderOf(where, startUs - TIME_LEAD_OVER_RECEIPT_US)}, 'UTC')`);
    expect(build(ACME, { endTime: at("2026-01-01T00:00:00Z") }).sql).not.toContain("received_at");
    // The hourly rollup has no received_at.
    expect(filterConditions(ACME, filter({ startTime: at("2026-01-01T00:00:00Z") }), { table: "events_hourly" }).build().sql).not.toContain("received_at");
  });

  it("takes the bound from the query language's since: where every match must satisfy it", () => {
    const floor = (query: string, startTime?: string) => {
      const where = build(ACME, { query, ...(startTime ? { startTime: at(startTime) } : {}) });
      const match = /received_at >= fromUnixTimestamp64Micro\(\{(p\d+):Int64\}/.exec(where.sql);
      return match ? new Date((Number(where.params[match[1]]) + TIME_LEAD_OVER_RECEIPT_US) / 1000).toISOString() : undefined;
    };
    expect(floor("since:2026-03-01 declined")).toBe("2026-03-01T00:00:00.000Z");
    expect(floor("since:2026-03-01 since:2026-02-01")).toBe("2026-03-01T00:00:00.000Z");
    expect(floor("(since:2026-03-01 a) OR (since:2026-02-01 b)")).toBe("2026-02-01T00:00:00.000Z");
    expect(floor("since:2026-03-01", "2026-04-01T00:00:00Z")).toBe("2026-04-01T00:00:00.000Z");
    expect(floor("since:2026-03-01", "2026-01-01T00:00:00Z")).toBe("2026-03-01T00:00:00.000Z");
    expect(floor("since:2026-03-01 OR declined")).toBeUndefined();
    expect(floor("-since:2026-03-01")).toBeUndefined();
    expect(floor("until:2026-03-01")).toBeUndefined();
  });

  it("takes the newest time a match can have from end_time and from until: where every match must satisfy it", () => {
    const ceiling = (query: string, endTime?: string) => {
      const us = filterConditions(ACME, filter({ query, ...(endTime ? { endTime: at(endTime) } : {}) })).timeCeilingUs;
      return us === undefined ? undefined : new Date(us / 1000).toISOString();
    };
    expect(ceiling("until:2026-03-01 declined")).toBe("2026-03-01T00:00:00.000Z");
    expect(ceiling("until:2026-03-01 until:2026-02-01")).toBe("2026-02-01T00:00:00.000Z");
    expect(ceiling("(until:2026-03-01 a) OR (until:2026-02-01 b)")).toBe("2026-03-01T00:00:00.000Z");
    expect(ceiling("until:2026-03-01", "2026-01-01T00:00:00Z")).toBe("2026-01-01T00:00:00.000Z");
    expect(ceiling("until:2026-03-01", "2026-04-01T00:00:00Z")).toBe("2026-03-01T00:00:00.000Z");
    expect(ceiling("declined", "2026-04-01T00:00:00Z")).toBe("2026-04-01T00:00:00.000Z");
    expect(ceiling("until:2026-03-01 OR declined")).toBeUndefined();
    expect(ceiling("-until:2026-03-01")).toBeUndefined();
    expect(ceiling("since:2026-03-01")).toBeUndefined();
  });

  it("counts relative times back from the now it is given, so the pages of one search share their bounds", () => {
    const nowUs = Date.UTC(2026, 5, 1) * 1000;
    const where = filterConditions(ACME, filter({ query: "since:24h until:1h" }), { nowUs });
    expect(where.timeFloorUs).toBe(nowUs - 86_400_000_000);
    expect(where.timeCeilingUs).toBe(nowUs - 3_600_000_000);
  });

  it("marks lookups of an identifier, which search newest-first from the whole store at once", () => {
    const lookup = (init?: MessageInitShape<typeof EventFilterSchema>, scope: TenantScope = ACME) => filterConditions(scope, init ? filter(init) : undefined).lookup;
    for (const init of [{ actorIds: ["u-1"] }, { resourceIds: ["r-1"] }, { requestId: "req-1" }, { attributes: { order: "o-1" } }]) expect(lookup(init), JSON.stringify(init)).toBe(true);
    for (const query of ["actor:u-1", "session:s-1 declined", "resource:r-1", "request:q-1", "id:e-1", 'attr.order:"o-1"', "actor:a OR id:b", "type:x actor:a"]) {
      expect(lookup({ query }), query).toBe(true);
    }
    for (const query of ["declined", "type:billing.*", "actor:a OR declined", "-actor:a", "attr.order:o-*", "attr.amount:>5", "actor_type:user"]) {
      expect(lookup({ query }), query).toBe(false);
    }
    expect(lookup({ types: ["a"], sources: ["b"] })).toBe(false);
    expect(lookup()).toBe(false);
    expect(lookup(undefined, { kind: "tenant", tenant: "acme", actorId: "u-1" })).toBe(true);
  });

  it("accepts an open-ended range", () => {
    expect(build(ACME, { startTime: at("2026-01-01T00:00:00Z") }).sql).not.toContain("time <");
    expect(build(ACME, { endTime: at("2026-01-01T00:00:00Z") }).sql).not.toContain("time >=");
  });

  it.each([
    ["equal to", "2026-01-01T00:00:00Z"],
    ["after", "2026-01-01T00:00:01Z"],
  ])("rejects a start %s the end", (_name, start) => {
    const err = invalid(ACME, { startTime: at(start), endTime: at("2026-01-01T00:00:00Z") });
    expect(err.message).toBe("filter.start_time must be before filter.end_time");
  });
});

describe("filterConditions: lists of values", () => {
  it("matches types with IN over an array parameter", () => {
    const where = build(ACME, { types: ["a.b", "c.d"] });
    expect(where.sql).toContain(`type IN ${placeholderOf(where, ["a.b", "c.d"])}`);
    expect(placeholderOf(where, ["a.b", "c.d"])).toMatch(/:Array\(String\)\}$/);
  });

  it("upper-cases actions", () => {
    const where = build(ACME, { actions: ["login", "Create", "DELETE"] });
    expect(where.sql).toContain(`action IN ${placeholderOf(where, ["LOGIN", "CREATE", "DELETE"])}`);
  });

  it.each([
    ["actorIds", "actor_id"],
    ["resourceIds", "resource_id"],
    ["sources", "source"],
  ] as const)("matches %s on the %s column", (field, column) => {
    const where = build(ACME, { [field]: ["v1", "v2"] });
    expect(where.sql).toContain(`${column} IN ${placeholderOf(where, ["v1", "v2"])}`);
  });

  it("adds no condition for an empty list", () => {
    expect(build(ACME, { types: [], actions: [], actorIds: [] }).sql).toBe("tenant_id = {p0:String}");
  });

  it("accepts 100 values and rejects 101", () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
    expect(build(ACME, { types: values(100) }).params.p1).toHaveLength(100);
    expect(invalid(ACME, { types: values(101) }).message).toBe("filter.types has 101 values; the limit is 100");
    expect(invalid(ACME, { sources: values(101) }).message).toBe("filter.sources has 101 values; the limit is 100");
  });

  it("accepts a 256-byte value and rejects a longer one", () => {
    expect(build(ACME, { actorIds: ["a".repeat(256)] }).params.p1).toEqual(["a".repeat(256)]);
    expect(invalid(ACME, { actorIds: ["a".repeat(257)] }).message).toBe("a value in filter.actor_ids is longer than 256 bytes");
  });

  it("counts value length in UTF-8 bytes", () => {
    expect(invalid(ACME, { resourceIds: ["é".repeat(129)] }).message).toBe("a value in filter.resource_ids is longer than 256 bytes");
  });

  it("limits resource_type and request_id in the same way", () => {
    expect(invalid(ACME, { resourceType: "r".repeat(257) }).message).toContain("filter.resource_type");
    expect(invalid(ACME, { requestId: "r".repeat(257) }).message).toContain("filter.request_id");
  });
});

describe("filterConditions: outcome and severity", () => {
  it("maps outcomes to their stored names", () => {
    const where = build(ACME, { outcomes: [Outcome.SUCCESS, Outcome.FAILURE] });
    expect(where.sql).toContain(`outcome IN ${placeholderOf(where, ["SUCCESS", "FAILURE"])}`);
  });

  it("rejects an unknown outcome", () => {
    expect(invalid(ACME, { outcomes: [Outcome.SUCCESS, 7 as Outcome] }).message).toBe("filter.outcomes has unknown value 7");
  });

  it("compares min_severity as the enum number", () => {
    const where = build(ACME, { minSeverity: Severity.WARNING });
    expect(where.sql).toContain("toInt8(severity) >= {p1:Int8}");
    expect(where.params.p1).toBe(2);
  });

  it("adds no severity condition for UNSPECIFIED", () => {
    expect(build(ACME, { minSeverity: Severity.UNSPECIFIED }).sql).not.toContain("severity");
  });

  it("rejects an unknown min_severity", () => {
    expect(invalid(ACME, { minSeverity: 9 as Severity }).message).toBe("filter.min_severity has unknown value 9");
  });
});

describe("filterConditions: equality fields", () => {
  it("matches resource_type and request_id exactly", () => {
    const where = build(ACME, { resourceType: "invoice", requestId: "req-1" });
    expect(where.sql).toContain(`resource_type = ${placeholderOf(where, "invoice")}`);
    expect(where.sql).toContain(`request_id = ${placeholderOf(where, "req-1")}`);
  });
});

describe("filterConditions: attributes", () => {
  it("requires the key to be present with the value, reusing the key's parameter", () => {
    const where = build(ACME, { attributes: { plan: "pro" } });
    const k = placeholderOf(where, "plan");
    const v = placeholderOf(where, "pro");
    expect(where.sql).toContain(`mapContains(attributes, ${k}) AND attributes[${k}] = ${v}`);
  });

  it("narrows by the words of the value through the attribute-value text index first", () => {
    const where = build(ACME, { attributes: { order: "Ord-4711" } });
    const words = placeholderOf(where, ["ord", "4711"]);
    expect(where.sql).toContain(`hasAllTokens(arrayMap(v -> lowerUTF8(v), mapValues(attributes)), ${words}) AND mapContains(attributes, `);
    expect(where.sql).toContain(`attributes[${placeholderOf(where, "order")}] = ${placeholderOf(where, "Ord-4711")}`);
  });

  it("looks up only the all-ASCII words, whose lower case cannot change between engine versions", () => {
    const where = build(ACME, { attributes: { who: "Müller-42 ab-AB" } });
    expect(where.sql).toContain(`mapValues(attributes)), ${placeholderOf(where, ["42", "ab"])})`);
    for (const value of ["", "--", "@@", "Müller", "Σ-Ω", "\u212Aelvin"]) expect(build(ACME, { attributes: { mark: value } }).sql, value).not.toContain("hasAllTokens");
  });

  it("accepts 20 pairs and rejects 21", () => {
    const pairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));
    expect(build(ACME, { attributes: pairs(20) }).sql.match(/mapContains/g)).toHaveLength(20);
    expect(invalid(ACME, { attributes: pairs(21) }).message).toBe("filter.attributes has 21 entries; the limit is 20");
  });

  it("rejects a key or value longer than 256 bytes", () => {
    expect(invalid(ACME, { attributes: { ["k".repeat(257)]: "v" } }).message).toBe("a value in filter.attributes is longer than 256 bytes");
    expect(invalid(ACME, { attributes: { k: "v".repeat(257) } }).message).toBe("a value in filter.attributes is longer than 256 bytes");
  });
});

describe("filterConditions: text", () => {
  it("searches words of the message and the attribute values through their text indexes", () => {
    const where = build(ACME, { text: "Paid" });
    const p = placeholderOf(where, "Paid");
    expect(where.sql).toContain(`hasAllTokens(lowerUTF8(message), lowerUTF8(${p})) OR hasAllTokens(arrayMap(v -> lowerUTF8(v), mapValues(attributes)), lowerUTF8(${p}))`);
  });

  it("checks a term of several words as written, after the indexes narrowed it down", () => {
    const where = build(ACME, { text: "card declined" });
    const p = placeholderOf(where, "card declined");
    expect(where.sql).toContain(`hasAllTokens(lowerUTF8(message), lowerUTF8(${p})) AND positionCaseInsensitiveUTF8(message, ${p}) > 0`);
  });

  it("accepts 1024 bytes and rejects more", () => {
    expect(build(ACME, { text: "t".repeat(1024) }).params.p1).toHaveLength(1024);
    expect(invalid(ACME, { text: "t".repeat(1025) }).message).toBe("filter.text is longer than 1024 bytes");
  });

  it("counts text in UTF-8 bytes", () => {
    expect(invalid(ACME, { text: "€".repeat(342) }).message).toBe("filter.text is longer than 1024 bytes");
  });
});

describe("Conditions", () => {
  it("lets callers add conditions whose parameters do not collide with the filter's", () => {
    const where = filterConditions(ACME, filter({ types: ["a"] }));
    const extra = where.param("Int64", 123);
    expect(extra).toBe("{p2:Int64}");
    where.add(`received_at <= ${extra}`);
    const { sql, params } = where.build();
    expect(sql).toBe("tenant_id = {p0:String} AND type IN {p1:Array(String)} AND received_at <= {p2:Int64}");
    expect(params).toEqual({ p0: "acme", p1: ["a"], p2: 123 });
  });
});
