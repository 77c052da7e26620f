/**
 * The compact query language of `EventFilter.query` and `?q=`:
 *
 *   type:billing.*  actor:u-42  attr.amount:>100  severity:>=WARNING
 *   outcome:FAILURE  "card declined"  -action:VIEW  since:24h
 *
 * Terms are ANDed; `OR` (or `|`) binds looser than AND; parentheses group;
 * `-` or `NOT` negates. A bare word or "quoted phrase" matches, ignoring case,
 * inside `message` or any attribute value. The parser is total: every input
 * either parses or fails with the position (1-based character) and what was
 * expected there.
 */
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import { invalidArgument } from "../errors.ts";
import { MAX_MICROS, MIN_MICROS, TIME_RANGE } from "../time.ts";

export type Comparison = "=" | ">" | ">=" | "<" | "<=";

export type QueryNode =
  | { kind: "and"; items: QueryNode[] }
  | { kind: "or"; items: QueryNode[] }
  | { kind: "not"; item: QueryNode }
  /** Exact match of a column; `prefix` for `type:billing.*`. */
  | { kind: "equals"; column: StringColumn; value: string; prefix: boolean }
  | { kind: "outcome"; value: Outcome }
  | { kind: "severity"; op: Comparison; value: Severity }
  /** `attr.<key>:value` (exact, or prefix with a trailing *) or a numeric comparison. */
  | { kind: "attribute"; key: string; op: Comparison; value: string; prefix: boolean }
  | { kind: "time"; op: ">=" | "<"; us: number }
  | { kind: "text"; value: string };

/** Query fields that compare one string column exactly. */
export const STRING_FIELDS = {
  type: "type",
  action: "action",
  actor: "actor_id",
  actor_type: "actor_type",
  session: "actor_session_id",
  resource: "resource_id",
  resource_type: "resource_type",
  source: "source",
  request: "request_id",
  id: "id",
} as const;
export type StringColumn = (typeof STRING_FIELDS)[keyof typeof STRING_FIELDS];

const FIELD_NAMES = [...Object.keys(STRING_FIELDS), "outcome", "severity", "since", "until", "attr.<key>"];
const MAX_QUERY_CHARS = 2048;
const MAX_TERMS = 100;
const MAX_DEPTH = 16;

interface Token {
  kind: "word" | "phrase" | "(" | ")" | "-";
  text: string;
  /** 1-based position of the token's first character. */
  at: number;
  /** For words: the part after the first colon was quoted (`field:"two words"`). */
  quotedValue?: boolean;
}

const fail = (at: number, message: string): never => {
  throw invalidArgument(`query: ${message} at position ${at}`);
};

/** A quoted string starting at `i` (the quote), with \" and \\ escapes; returns its text and the index after it. */
function readQuoted(q: string, i: number): { text: string; end: number } {
  let text = "";
  for (let j = i + 1; j < q.length; j++) {
    const c = q[j];
    if (c === "\\" && j + 1 < q.length) {
      text += q[++j];
    } else if (c === '"') {
      return { text, end: j + 1 };
    } else {
      text += c;
    }
  }
  return fail(i + 1, "this quote is never closed; expected a closing \"");
}

function tokenize(q: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "(" || c === ")") {
      tokens.push({ kind: c, text: c, at: i + 1 });
      i++;
    } else if (c === '"') {
      const { text, end } = readQuoted(q, i);
      tokens.push({ kind: "phrase", text, at: i + 1 });
      i = end;
    } else if (c === "-" && i + 1 < q.length && !/[\s)]/.test(q[i + 1]) && (tokens.length === 0 || /[\s(]/.test(q[i - 1]))) {
      tokens.push({ kind: "-", text: "-", at: i + 1 });
      i++;
    } else {
      const start = i;
      let text = "";
      let quotedValue = false;
      while (i < q.length && !/[\s()]/.test(q[i])) {
        if (q[i] === '"') {
          if (!text.includes(":") || !text.endsWith(":")) fail(i + 1, 'a quote inside a word; put the whole phrase in quotes or use field:"value"');
          const { text: value, end } = readQuoted(q, i);
          text += value;
          quotedValue = true;
          i = end;
          break;
        }
        text += q[i++];
      }
      tokens.push({ kind: "word", text, at: start + 1, quotedValue });
    }
  }
  return tokens;
}

const ENUM_OUTCOMES: Record<string, Outcome> = { SUCCESS: Outcome.SUCCESS, FAILURE: Outcome.FAILURE };
const ENUM_SEVERITIES: Record<string, Severity> = {
  INFO: Severity.INFO,
  WARNING: Severity.WARNING,
  ERROR: Severity.ERROR,
  CRITICAL: Severity.CRITICAL,
};
const DURATION = /^(\d{1,6})([smhdw])$/;
const UNIT_US: Record<string, number> = { s: 1e6, m: 60e6, h: 3600e6, d: 86_400e6, w: 604_800e6 };
const DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function splitOperator(raw: string): { op: Comparison; rest: string } {
  const m = /^(>=|<=|>|<|=)?(.*)$/s.exec(raw)!;
  return { op: (m[1] as Comparison | undefined) ?? "=", rest: m[2] };
}

/** A time bound: relative (24h, 7d) back from `nowUs`, or an absolute date or RFC 3339 time. */
function timeValue(raw: string, at: number, nowUs: number): number {
  const rel = DURATION.exec(raw);
  let us: number | undefined;
  if (rel) us = nowUs - Number(rel[1]) * UNIT_US[rel[2]];
  else if (DATE.test(raw)) {
    const ms = Date.parse(raw.length === 10 ? `${raw}T00:00:00Z` : raw);
    if (!Number.isNaN(ms)) us = ms * 1000;
  }
  if (us === undefined) {
    return fail(at, `"${raw}" is not a time; expected a duration back from now (90s, 15m, 24h, 7d, 2w), a date (2026-11-01) or an RFC 3339 time`);
  }
  if (us < MIN_MICROS || us > MAX_MICROS) return fail(at, `"${raw}" is outside the times the store holds (${TIME_RANGE})`);
  return us;
}

function fieldTerm(token: Token, nowUs: number): QueryNode {
  const colon = token.text.indexOf(":");
  const field = token.text.slice(0, colon);
  const raw = token.text.slice(colon + 1);
  const valueAt = token.at + colon + 1;
  if (raw === "" && !token.quotedValue) fail(valueAt, `expected a value after "${field}:"`);
  // Own keys only: `in` would take constructor, toString, __proto__ … for fields.
  if (Object.hasOwn(STRING_FIELDS, field)) {
    const prefix = !token.quotedValue && raw.endsWith("*");
    if (prefix && field !== "type") fail(valueAt, `a trailing * (prefix match) works on type and attr.<key> only`);
    let value = prefix ? raw.slice(0, -1) : raw;
    if (field === "action") value = value.toUpperCase();
    return { kind: "equals", column: STRING_FIELDS[field as keyof typeof STRING_FIELDS], value, prefix };
  }
  if (field === "outcome") {
    const value = ENUM_OUTCOMES[raw.toUpperCase().replace(/^OUTCOME_/, "")];
    if (value === undefined) fail(valueAt, `expected SUCCESS or FAILURE after "outcome:", not "${raw}"`);
    return { kind: "outcome", value };
  }
  if (field === "severity") {
    const { op, rest } = splitOperator(raw);
    const value = ENUM_SEVERITIES[rest.toUpperCase().replace(/^SEVERITY_/, "")];
    if (value === undefined) fail(valueAt, `expected INFO, WARNING, ERROR or CRITICAL (optionally after >=, >, <=, <), not "${raw}"`);
    return { kind: "severity", op, value };
  }
  if (field === "since" || field === "until") {
    return { kind: "time", op: field === "since" ? ">=" : "<", us: timeValue(raw, valueAt, nowUs) };
  }
  if (field.startsWith("attr.") && field.length > 5) {
    const key = field.slice(5);
    if (token.quotedValue) return { kind: "attribute", key, op: "=", value: raw, prefix: false };
    const { op, rest } = splitOperator(raw);
    if (op !== "=") {
      if (!/^-?\d+(\.\d+)?$/.test(rest)) fail(valueAt, `expected a number after "${field}:${op}", not "${rest}"`);
      if (!Number.isFinite(Number(rest))) fail(valueAt, `the number after "${field}:${op}" is too large`);
      return { kind: "attribute", key, op, value: rest, prefix: false };
    }
    const prefix = rest.endsWith("*");
    return { kind: "attribute", key, op, value: prefix ? rest.slice(0, -1) : rest, prefix };
  }
  return fail(token.at, `unknown field "${field}"; expected one of ${FIELD_NAMES.join(", ")}, or quote the word to search for it`);
}

/** Parses a query into a tree; throws INVALID_ARGUMENT naming the position and what was expected. */
export function parseQuery(query: string, nowUs: number): QueryNode {
  if (query.length > MAX_QUERY_CHARS) fail(MAX_QUERY_CHARS + 1, `the query is longer than ${MAX_QUERY_CHARS} characters`);
  const tokens = tokenize(query);
  let pos = 0;
  let terms = 0;
  const end = query.length + 1;
  const peek = () => tokens[pos];
  const isOr = (t: Token | undefined) => t?.kind === "word" && (t.text === "OR" || t.text === "|");

  function or(depth: number): QueryNode {
    const items = [and(depth)];
    while (isOr(peek())) {
      pos++;
      items.push(and(depth));
    }
    return items.length === 1 ? items[0] : { kind: "or", items };
  }

  function and(depth: number): QueryNode {
    const items: QueryNode[] = [];
    for (;;) {
      const t = peek();
      if (!t || t.kind === ")" || isOr(t)) break;
      if (t.kind === "word" && t.text === "AND") {
        pos++;
        continue;
      }
      items.push(unary(depth));
    }
    if (items.length === 0) {
      const t = peek();
      fail(t?.at ?? end, t ? `unexpected "${t.text}"; expected a term` : "expected a term");
    }
    return items.length === 1 ? items[0] : { kind: "and", items };
  }

  function unary(depth: number): QueryNode {
    if (depth > MAX_DEPTH) fail(peek()?.at ?? end, `the query nests deeper than ${MAX_DEPTH} levels`);
    const t = peek()!;
    if (t.kind === "-" || (t.kind === "word" && t.text === "NOT")) {
      pos++;
      if (!peek() || peek()!.kind === ")" || isOr(peek())) fail(peek()?.at ?? end, `expected a term after "${t.text}"`);
      return { kind: "not", item: unary(depth + 1) };
    }
    if (t.kind === "(") {
      pos++;
      const inner = or(depth + 1);
      if (peek()?.kind !== ")") fail(peek()?.at ?? end, `expected ")" to close the "(" at position ${t.at}`);
      pos++;
      return inner;
    }
    if (t.kind === ")") fail(t.at, 'unexpected ")"; expected a term');
    pos++;
    if (++terms > MAX_TERMS) fail(t.at, `the query has more than ${MAX_TERMS} terms`);
    if (t.kind === "phrase") return { kind: "text", value: t.text };
    if (t.text.includes(":")) return fieldTerm(t, nowUs);
    return { kind: "text", value: t.text };
  }

  if (tokens.length === 0) fail(1, "the query is empty; leave it out to match everything");
  const tree = or(0);
  if (pos < tokens.length) fail(tokens[pos].at, `unexpected "${tokens[pos].text}"; expected OR, a term or the end`);
  return tree;
}
