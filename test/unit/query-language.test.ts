import { describe, expect, it } from "vitest";
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import { Conditions } from "../../src/query/filter-sql.ts";
import { querySql } from "../../src/query/query-compile.ts";
import { parseQuery } from "../../src/query/query-language.ts";

const NOW = Date.UTC(2026, 10, 23, 12) * 1000;
const parse = (q: string) => parseQuery(q, NOW);

describe("query language: what each operator parses to", () => {
  it.each([
    ["type:billing.invoice.paid", { kind: "equals", column: "type", value: "billing.invoice.paid", prefix: false }],
    ["type:billing.*", { kind: "equals", column: "type", value: "billing.", prefix: true }],
    ["action:view", { kind: "equals", column: "action", value: "VIEW", prefix: false }],
    ["actor:u-42", { kind: "equals", column: "actor_id", value: "u-42", prefix: false }],
    ['resource:"acct 1"', { kind: "equals", column: "resource_id", value: "acct 1", prefix: false }],
    ["session:s-1", { kind: "equals", column: "actor_session_id", value: "s-1", prefix: false }],
    ["request:req-7", { kind: "equals", column: "request_id", value: "req-7", prefix: false }],
    ["outcome:failure", { kind: "outcome", value: Outcome.FAILURE }],
    ["severity:>=WARNING", { kind: "severity", op: ">=", value: Severity.WARNING }],
    ["severity:error", { kind: "severity", op: "=", value: Severity.ERROR }],
    ["attr.amount:>100", { kind: "attribute", key: "amount", op: ">", value: "100", prefix: false }],
    ["attr.amount:<=-2.5", { kind: "attribute", key: "amount", op: "<=", value: "-2.5", prefix: false }],
    ["attr.plan:pro", { kind: "attribute", key: "plan", op: "=", value: "pro", prefix: false }],
    ["attr.region:eu-*", { kind: "attribute", key: "region", op: "=", value: "eu-", prefix: true }],
    ['attr.note:"a b"', { kind: "attribute", key: "note", op: "=", value: "a b", prefix: false }],
    ["since:24h", { kind: "time", op: ">=", us: NOW - 24 * 3600e6 }],
    ["since:90s", { kind: "time", op: ">=", us: NOW - 90e6 }],
    ["until:2026-11-01", { kind: "time", op: "<", us: Date.UTC(2026, 10, 1) * 1000 }],
    ["since:2026-11-01T10:00:00+01:00", { kind: "time", op: ">=", us: Date.UTC(2026, 10, 1, 9) * 1000 }],
    ['"card declined"', { kind: "text", value: "card declined" }],
    ['"say \\"hi\\""', { kind: "text", value: 'say "hi"' }],
    ["declined", { kind: "text", value: "declined" }],
  ])("%s", (query, node) => {
    expect(parse(query)).toEqual(node);
  });

  it("ANDs by default, OR binds looser, parentheses group, - and NOT negate", () => {
    const a = { kind: "text", value: "a" };
    const b = { kind: "text", value: "b" };
    const c = { kind: "text", value: "c" };
    expect(parse("a b")).toEqual({ kind: "and", items: [a, b] });
    expect(parse("a AND b")).toEqual({ kind: "and", items: [a, b] });
    expect(parse("a b OR c")).toEqual({ kind: "or", items: [{ kind: "and", items: [a, b] }, c] });
    expect(parse("a (b OR c)")).toEqual({ kind: "and", items: [a, { kind: "or", items: [b, c] }] });
    expect(parse("a | c")).toEqual({ kind: "or", items: [a, c] });
    expect(parse("-a NOT b")).toEqual({ kind: "and", items: [{ kind: "not", item: a }, { kind: "not", item: b }] });
    expect(parse("-(a OR b)")).toEqual({ kind: "not", item: { kind: "or", items: [a, b] } });
    expect(parse("u-42")).toEqual({ kind: "text", value: "u-42" });
  });

  it("the example from the documentation", () => {
    const tree = parse('type:billing.*  actor:u-42  attr.amount:>100  severity:>=WARNING  outcome:FAILURE  "card declined"  -action:VIEW  since:24h');
    expect(tree.kind === "and" && tree.items.map((n) => n.kind)).toEqual(["equals", "equals", "attribute", "severity", "outcome", "text", "not", "time"]);
  });
});

describe("query language: errors say where and what was expected", () => {
  it.each([
    ["", "query: the query is empty; leave it out to match everything at position 1"],
    ["(a b", 'query: expected ")" to close the "(" at position 1 at position 5'],
    ["a )", 'query: unexpected ")"; expected OR, a term or the end at position 3'],
    ["a OR", "query: expected a term at position 5"],
    ["OR a", 'query: unexpected "OR"; expected a term at position 1'],
    ['"open', 'query: this quote is never closed; expected a closing " at position 1'],
    ["colour:red", 'query: unknown field "colour"; expected one of type, action, actor, actor_type, session, resource, resource_type, source, request, id, outcome, severity, since, until, attr.<key>, or quote the word to search for it at position 1'],
    // Names every object inherits are not fields (they once compiled into the SQL text, and threw in a live tail's filter).
    ...["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"].map((name) => [
      `${name}:x`,
      `query: unknown field "${name}"; expected one of type, action, actor, actor_type, session, resource, resource_type, source, request, id, outcome, severity, since, until, attr.<key>, or quote the word to search for it at position 1`,
    ]),
    ["a outcome:maybe", 'query: expected SUCCESS or FAILURE after "outcome:", not "maybe" at position 11'],
    ["severity:>=LOUD", 'query: expected INFO, WARNING, ERROR or CRITICAL (optionally after >=, >, <=, <), not ">=LOUD" at position 10'],
    ["attr.amount:>lots", 'query: expected a number after "attr.amount:>", not "lots" at position 13'],
    ["since:1850-01-01", 'query: "1850-01-01" is outside the times the store holds (between 1900-01-01 and 2255-01-01) at position 7'],
    ["a since:999999d", 'query: "999999d" is outside the times the store holds (between 1900-01-01 and 2255-01-01) at position 9'],
    [`attr.n:>1${"0".repeat(400)}`, 'query: the number after "attr.n:>" is too large at position 8'],
    ["since:yesterday", 'query: "yesterday" is not a time; expected a duration back from now (90s, 15m, 24h, 7d, 2w), a date (2026-11-01) or an RFC 3339 time at position 7'],
    ["actor:u*", "query: a trailing * (prefix match) works on type and attr.<key> only at position 7"],
    ["type:", 'query: expected a value after "type:" at position 6'],
    ["NOT", 'query: expected a term after "NOT" at position 4'],
    ['ab"c"', 'query: a quote inside a word; put the whole phrase in quotes or use field:"value" at position 3'],
  ])("%j", (query, message) => {
    expect(() => parse(query)).toThrow(message);
  });

  it("bounds size, terms and depth", () => {
    expect(() => parse("a ".repeat(1100))).toThrow("longer than 2048 characters");
    expect(() => parse("a ".repeat(101))).toThrow("more than 100 terms");
    expect(() => parse("(".repeat(20) + "a" + ")".repeat(20))).toThrow("nests deeper than 16 levels");
  });
});

describe("query language → SQL", () => {
  it("puts every value in a parameter, never in the SQL text", () => {
    const where = new Conditions();
    const sql = querySql(parse("type:x'; DROP TABLE events -- attr.k:>5 \"o'hara\" -(actor:a OR severity:<ERROR)"), where);
    expect(sql).not.toContain("DROP");
    expect(sql).not.toContain("o'hara");
    expect(Object.values(where.params)).toEqual(expect.arrayContaining(["x';", "DROP", "TABLE", "events", "-", "k", "5", "o'hara", "a", Severity.ERROR]));
    expect(sql).toMatch(/^\(type = \{p0:String\} AND /);
  });
});
