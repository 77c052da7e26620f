/**
 * Deterministic fuzz inputs for the request decoders of IngestService/Append
 * and QueryService/SearchEvents. Input `index` of run `seed` is a pure
 * function of the two (`fuzzInput(seed, index)`), so any failure is
 * reproduced from the pair alone, without replaying the inputs before it.
 */
import { gzipSync } from "node:zlib";
import { create, toBinary, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { AppendRequestSchema } from "../../gen/auditlog/v1/ingest_pb.js";
import { SearchEventsRequestSchema } from "../../gen/auditlog/v1/query_pb.js";

/** mulberry32: small, fast, and good enough to pick mutations. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** 0 .. n-1 */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** a .. b, inclusive */
  range(a: number, b: number): number {
    return a + this.int(b - a + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A string of `n` characters drawn from a mix of ASCII, SQL-ish, control and non-BMP characters. */
  text(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += this.pick(CHARS);
    return s;
  }
}

const CHARS = [..."abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 .,:;-_/@'\"\\{}[]()<>*%?!=|&#$\t\n\r\u0000\u0001\u007f", "é", "ß", "İ", "日", "🔥", "\u200b", "\u202e", "\ufeff", "\ud800", "\udfff"];

/** A seed per input, from the run's seed and the input's index. */
export function inputSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export type Rpc = "Append" | "SearchEvents";
export type Encoding = "proto" | "json";
export type TokenKind = "writer" | "auditor" | "none" | "garbage";

export interface FuzzInput {
  rpc: Rpc;
  encoding: Encoding;
  token: TokenKind;
  /** The strategy that made the body, for the report. */
  kind: string;
  body: Uint8Array;
  /** Set when the body is sent with `content-encoding: gzip`. */
  gzip?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

const TYPES = ["fz.created", "fz.updated", "billing.invoice.paid", "auth.login", "a", "a.b.c-d_e"];
const ACTIONS = ["CREATE", "UPDATE", "DELETE", "VIEW", "login", "X_1"];
const QUERIES = [
  "type:fz.*",
  "actor:u-1 attr.amount:>10 -action:VIEW since:30d",
  '"card declined" OR severity:>=WARNING',
  "(outcome:FAILURE",
  "attr.k:pre*",
  "until:2026-01-01 resource_type:account",
  "x".repeat(2100),
  "' OR 1=1 --",
  "{p0:String}",
  "NOT NOT NOT x",
];

function randomStruct(r: Rng, depth: number): JsonObject {
  const out: JsonObject = {};
  for (let i = r.range(0, 4); i > 0; i--) {
    const key = r.chance(0.8) ? r.pick(["a", "status", "n", "nested", "list", "__proto__", "constructor"]) : r.text(r.range(0, 6));
    // defineProperty: a "__proto__" key is an own key of the document, not its prototype.
    Object.defineProperty(out, key, { value: randomJsonValue(r, depth - 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function randomJsonValue(r: Rng, depth: number): JsonValue {
  switch (depth <= 0 ? r.int(4) : r.int(6)) {
    case 0:
      return r.text(r.range(0, 12));
    case 1:
      return r.pick([0, 1, -1, 1.5, 1e300, -1e-300, 2 ** 53]);
    case 2:
      return r.chance(0.5);
    case 3:
      return null;
    case 4:
      return Array.from({ length: r.range(0, 3) }, () => randomJsonValue(r, depth - 1));
    default:
      return randomStruct(r, depth - 1);
  }
}

function randomEvent(r: Rng): Event {
  const attributes: Record<string, string> = {};
  for (let i = r.range(0, 4); i > 0; i--) {
    attributes[r.chance(0.8) ? r.pick(["amount", "currency", "k", "seq", "plan"]) : r.text(r.range(0, 8))] = r.chance(0.8) ? String(r.int(1000)) : r.text(r.range(0, 20));
  }
  return create(EventSchema, {
    id: r.chance(0.5) ? `fz-${r.int(1_000_000_000)}` : r.chance(0.1) ? r.text(r.range(1, 10)) : "",
    tenantId: r.chance(0.1) ? r.pick(["fz", "fz-other", r.text(4)]) : "",
    time: r.chance(0.6) ? timestampFromMs(Date.now() - r.int(1e10)) : r.chance(0.1) ? { seconds: BigInt(r.pick([-1, 0, 2 ** 40, -(2 ** 40)])), nanos: r.pick([0, -1, 2e9]) } : undefined,
    utcOffsetMinutes: r.chance(0.9) ? r.range(-120, 120) : r.pick([-(2 ** 31), 2 ** 31 - 1, 5000]),
    type: r.chance(0.9) ? r.pick(TYPES) : r.text(r.range(0, 10)),
    action: r.chance(0.9) ? r.pick(ACTIONS) : r.text(r.range(0, 6)),
    outcome: r.pick([0, 1, 2, 3, 99]),
    severity: r.pick([0, 1, 2, 3, 4, 5, 99]),
    actor: r.chance(0.95)
      ? {
          id: r.chance(0.9) ? r.pick(["u-1", "svc-billing", "u-2"]) : r.text(r.range(0, 12)),
          type: r.pick(["", "user", "service"]),
          name: r.text(r.range(0, 10)),
          sessionId: r.pick(["", "s-1"]),
          ip: r.pick(["", "", "10.0.0.7", "::1", "999.1.1.1", r.text(5)]),
          userAgent: r.text(r.range(0, 10)),
        }
      : undefined,
    resource: r.chance(0.7) ? { type: r.pick(["account", "invoice", ""]), id: r.text(r.range(0, 8)), name: "" } : undefined,
    source: r.pick(["fuzz", "billing-api", ""]),
    requestId: r.pick(["", "req-1", r.text(6)]),
    message: r.text(r.range(0, 60)),
    attributes,
    before: r.chance(0.2) ? randomStruct(r, 3) : undefined,
    after: r.chance(0.2) ? randomStruct(r, 3) : undefined,
  });
}

function validAppend(r: Rng) {
  return create(AppendRequestSchema, { events: Array.from({ length: r.range(0, 4) }, () => randomEvent(r)) });
}

function validSearch(r: Rng) {
  const filter: Record<string, unknown> = {};
  if (r.chance(0.3)) filter.types = Array.from({ length: r.range(1, 3) }, () => r.pick(TYPES));
  if (r.chance(0.2)) filter.actions = [r.pick(ACTIONS)];
  if (r.chance(0.2)) filter.outcomes = [r.pick([0, 1, 2, 7])];
  if (r.chance(0.2)) filter.minSeverity = r.pick([0, 1, 2, 4, 9]);
  if (r.chance(0.2)) filter.actorIds = [r.pick(["u-1", r.text(5)])];
  if (r.chance(0.1)) filter.resourceType = r.text(r.range(0, 6));
  if (r.chance(0.1)) filter.resourceIds = [r.text(4)];
  if (r.chance(0.2)) filter.sources = ["fuzz"];
  if (r.chance(0.1)) filter.requestId = r.text(4);
  if (r.chance(0.2)) filter.attributes = { [r.pick(["amount", "k", r.text(3)])]: r.text(r.range(0, 4)) };
  if (r.chance(0.2)) filter.text = r.text(r.range(0, 12));
  if (r.chance(0.1)) filter.tenantId = r.pick(["fz", "fz-other", r.text(3)]);
  if (r.chance(0.3)) filter.query = r.chance(0.7) ? r.pick(QUERIES) : r.text(r.range(0, 30));
  if (r.chance(0.2)) filter.startTime = timestampFromMs(Date.now() - r.int(1e11));
  if (r.chance(0.2)) filter.endTime = r.chance(0.9) ? timestampFromMs(Date.now() - r.int(1e10)) : { seconds: BigInt(r.pick([2 ** 40, -(2 ** 40)])), nanos: 0 };
  return create(SearchEventsRequestSchema, {
    filter: r.chance(0.9) ? filter : undefined,
    pageSize: r.chance(0.03) ? 1000 : r.pick([0, 1, 10, 1001, -1, 2 ** 31 - 1]),
    pageToken: r.chance(0.1) ? r.pick(["WzEsMl0", r.text(10), "eyJ9"]) : "",
  });
}

function validMessage(r: Rng, rpc: Rpc) {
  return rpc === "Append" ? { schema: AppendRequestSchema, message: validAppend(r) } : { schema: SearchEventsRequestSchema, message: validSearch(r) };
}

/**
 * Valid requests to mutate: a corpus per run, made once from the seed (making
 * protobuf messages is the costly part of an input), drawn from by each input.
 */
const CORPUS_SIZE = 400;
interface Corpus {
  binary: Record<Rpc, Uint8Array[]>;
  json: Record<Rpc, JsonValue[]>;
}
const corpora = new Map<number, Corpus>();
function corpus(seed: number): Corpus {
  let c = corpora.get(seed);
  if (c) return c;
  const r = new Rng(inputSeed(seed, -1));
  c = { binary: { Append: [], SearchEvents: [] }, json: { Append: [], SearchEvents: [] } };
  for (const rpc of ["Append", "SearchEvents"] as const) {
    for (let i = 0; i < CORPUS_SIZE; i++) {
      const { schema, message } = validMessage(r, rpc);
      c.binary[rpc].push(toBinary(schema as typeof AppendRequestSchema, message as never));
      try {
        c.json[rpc].push(toJson(schema as typeof AppendRequestSchema, message as never));
      } catch {
        // A time outside what JSON can write (the binary inputs take those).
      }
    }
  }
  corpora.set(seed, c);
  return c;
}

const validBinary = (r: Rng, seed: number, rpc: Rpc): Uint8Array => r.pick(corpus(seed).binary[rpc]);
const validJson = (r: Rng, seed: number, rpc: Rpc): JsonValue => r.pick(corpus(seed).json[rpc]);

// ---------------------------------------------------------------- binary mutations

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function varint(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return new Uint8Array(out);
}

/** Reads a varint at `i` as a plain number; undefined past `end` or beyond 2^35. */
function readVarint(buf: Uint8Array, i: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let shift = 0; shift <= 35; shift += 7) {
    if (i >= end) return undefined;
    const b = buf[i++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return { value, next: i };
  }
  return undefined;
}

/** Offsets and sizes of every length prefix a protobuf scan finds, nested messages included (best effort, always forward). */
function lengthPrefixes(buf: Uint8Array, start = 0, end = buf.length, depth = 0, out: { at: number; size: number; value: number }[] = []) {
  let i = start;
  while (i < end) {
    const tag = readVarint(buf, i, end);
    if (!tag) return out;
    i = tag.next;
    const wire = tag.value % 8;
    if (wire === 0) {
      const v = readVarint(buf, i, end);
      if (!v) return out;
      i = v.next;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = readVarint(buf, i, end);
      if (!len) return out;
      out.push({ at: i, size: len.next - i, value: len.value });
      i = len.next;
      if (i + len.value > end) return out;
      if (depth < 8) lengthPrefixes(buf, i, i + len.value, depth + 1, out);
      i += len.value;
    } else return out;
  }
  return out;
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x08, 0x0a, 0x12, 0x0b, 0x0c, 0x0f];

function mutateBinary(r: Rng, buf: Uint8Array, other: () => Uint8Array): { kind: string; body: Uint8Array } {
  switch (r.int(8)) {
    case 0: {
      const out = buf.slice();
      for (let n = r.range(1, 8); n > 0 && out.length > 0; n--) out[r.int(out.length)] ^= 1 << r.int(8);
      return { kind: "bin:bitflip", body: out };
    }
    case 1:
      return { kind: "bin:truncate", body: buf.slice(0, r.int(buf.length + 1)) };
    case 2: {
      if (r.chance(0.3)) return { kind: "bin:duplicate-whole", body: concat(buf, buf) };
      const from = r.int(buf.length + 1);
      const slice = buf.slice(from, from + r.range(1, 64));
      const at = r.int(buf.length + 1);
      return { kind: "bin:duplicate-slice", body: concat(buf.slice(0, at), slice, slice, buf.slice(at)) };
    }
    case 3: {
      const b = other();
      return { kind: "bin:splice", body: concat(buf.slice(0, r.int(buf.length + 1)), b.slice(r.int(b.length + 1))) };
    }
    case 4: {
      const prefixes = lengthPrefixes(buf);
      if (prefixes.length === 0) return { kind: "bin:length-none", body: buf };
      const p = r.pick(prefixes);
      const value = r.pick([0n, BigInt(p.value + 1), BigInt(Math.max(0, p.value - 1)), 2n ** 31n, 2n ** 32n - 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(r.int(1 << 20))]);
      // Sometimes the same value in an overlong encoding.
      const encoded = r.chance(0.2) ? concat(varint(BigInt(p.value)).map((x) => x | 0x80), new Uint8Array([0x00])) : varint(value);
      return { kind: "bin:length-prefix", body: concat(buf.slice(0, p.at), encoded, buf.slice(p.at + p.size)) };
    }
    case 5: {
      const out = buf.slice();
      for (let n = r.range(1, 6); n > 0 && out.length > 0; n--) out[r.int(out.length)] = r.pick(INTERESTING);
      return { kind: "bin:overwrite", body: out };
    }
    case 6: {
      const at = r.int(buf.length + 1);
      return { kind: "bin:insert", body: concat(buf.slice(0, at), r.bytes(r.range(1, 16)), buf.slice(at)) };
    }
    default: {
      // Well-formed tags with payloads of the wrong kind, odd wire types, huge field numbers, group markers.
      const parts: Uint8Array[] = [];
      for (let n = r.range(1, 8); n > 0; n--) {
        const field = BigInt(r.chance(0.7) ? r.range(1, 22) : r.pick([0, 536_870_911, 19_000, 2 ** 29 + 5]));
        const wire = BigInt(r.int(8));
        parts.push(varint((field << 3n) | wire));
        if (wire === 0n) parts.push(varint(r.chance(0.5) ? BigInt(r.int(1000)) : 2n ** 64n - 1n));
        else if (wire === 2n) {
          const payload = r.chance(0.5) ? r.bytes(r.range(0, 20)) : buf.slice(0, r.int(buf.length + 1));
          parts.push(varint(BigInt(payload.length)), payload);
        } else if (wire === 1n) parts.push(r.bytes(8));
        else if (wire === 5n) parts.push(r.bytes(4));
      }
      return { kind: "bin:tags", body: r.chance(0.5) ? concat(buf, ...parts) : concat(...parts) };
    }
  }
}

// ---------------------------------------------------------------- JSON mutations

const enc = new TextEncoder();
/** Raw JSON tokens JSON.stringify cannot produce: inserted by text replacement. */
const RAW_TOKENS = ["1e309", "-1e309", "99999999999999999999999999999", "-0", "1E+2", "0.0000000000000000000001", "18446744073709551616", "-9223372036854775809", "2147483648", "NaN", "Infinity", "01", ".5", "0x10", "1_000"];
const WEIRD_VALUES: JsonValue[] = [null, true, false, 0, -1, 1.5, 2 ** 53 + 2, "", "x", "' OR 1=1 --", "{p0:String}", "\u0000", "\ud800", [], {}, [1, "a", null], { a: { b: [] } }, "2026-13-45T99:99:99Z", "9999-12-31T23:59:59Z", "SEVERITY_BOGUS", "OUTCOME_FAILURE", "AAAA", "-", "x".repeat(5000)];
/** A fresh copy of a weird value: never the same object in two places. */
const weird = (r: Rng): JsonValue => structuredClone(r.pick(WEIRD_VALUES));
const ODD_KEYS = ["atributes", "__proto__", "constructor", "prototype", "@type", "", "events ", "EVENTS", "tenant_id", "page_size", "filter.types", "\u0000"];

type Path = (string | number)[];
function paths(value: JsonValue, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

function setAt(root: JsonValue, path: Path, value: JsonValue | undefined): JsonValue {
  if (path.length === 0) return value ?? null;
  let parent: any = root;
  for (const key of path.slice(0, -1)) parent = parent[key];
  const last = path[path.length - 1];
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (typeof last === "string") {
    Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  } else parent[last] = value;
  return root;
}

function nested(depth: number, open: string, close: string, inner: string): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

function mutateJson(r: Rng, rpc: Rpc, value: JsonValue): { kind: string; text: string } {
  switch (r.int(7)) {
    case 0:
    case 1: {
      // Tree edits: a node replaced by a value of another type, deleted, or joined by an odd key.
      let root = structuredClone(value);
      let raw: string | undefined;
      for (let n = r.range(1, 3); n > 0; n--) {
        const all = paths(root);
        const path = r.pick(all);
        const op = r.int(4);
        if (op === 0) root = setAt(root, path, weird(r));
        else if (op === 1 && path.length > 0) root = setAt(root, path, undefined);
        else if (op === 2) {
          raw = r.pick(RAW_TOKENS);
          root = setAt(root, path, "\u0001RAW\u0001");
        } else {
          let target: any = root;
          for (const key of path) target = target[key];
          if (target && typeof target === "object" && !Array.isArray(target)) {
            Object.defineProperty(target, r.pick(ODD_KEYS), { value: weird(r), enumerable: true, writable: true, configurable: true });
          }
        }
      }
      let text = JSON.stringify(root) ?? "null";
      if (raw) text = text.replace('"\\u0001RAW\\u0001"', raw);
      return { kind: "json:tree", text };
    }
    case 2: {
      // Text edits: characters inserted, deleted or replaced; truncation; a doubled stretch.
      let text = JSON.stringify(value);
      for (let n = r.range(1, 4); n > 0; n--) {
        const at = r.int(text.length + 1);
        switch (r.int(4)) {
          case 0:
            text = text.slice(0, at) + r.pick([..."{}[]\":,\\ 0-e", "null", "true", "\\u", "\\ud800", "\u0000", "🔥", ...RAW_TOKENS]) + text.slice(at);
            break;
          case 1:
            text = text.slice(0, at) + text.slice(at + r.range(1, 4));
            break;
          case 2:
            text = text.slice(0, at);
            break;
          default: {
            const piece = text.slice(at, at + r.range(1, 40));
            text = text.slice(0, at) + piece + piece + text.slice(at);
          }
        }
      }
      return { kind: "json:text", text };
    }
    case 3: {
      // Deep nesting, where a value of any shape is allowed (Struct), and where it is not.
      const depth = r.pick([40, 64, 1000, 20_000]);
      const where = r.int(4);
      const deep = r.chance(0.5) ? nested(depth, "[", "]", "1") : nested(depth, '{"a":', "}", "1");
      if (rpc === "Append" && where < 2) return { kind: `json:deep-struct-${depth}`, text: `{"events":[{"type":"fz.deep","action":"CREATE","actor":{"id":"u"},"before":{"x":${deep}}}]}` };
      if (where === 2) return { kind: `json:deep-root-${depth}`, text: deep };
      return { kind: `json:deep-field-${depth}`, text: rpc === "Append" ? `{"events":${deep}}` : `{"filter":{"types":${deep}}}` };
    }
    case 4: {
      // Numbers at and past the edges where numbers belong.
      const number = r.pick(RAW_TOKENS.concat(["0", "1000", "-1", "2147483647", "4294967296", '"12"', '"1e3"', '"NaN"', "1.0", "true"]));
      if (rpc === "SearchEvents") return { kind: "json:number", text: `{"pageSize":${number},"filter":{"minSeverity":${r.pick([number, '"SEVERITY_INFO"'])}}}` };
      return { kind: "json:number", text: `{"events":[{"type":"fz.n","action":"CREATE","actor":{"id":"u"},"utcOffsetMinutes":${number},"severity":${r.pick([number, "1"])},"time":{"seconds":${number}}}]}` };
    }
    case 5: {
      // A stream of random JSON-ish tokens.
      let text = "";
      for (let n = r.range(1, 30); n > 0; n--) text += r.pick(["{", "}", "[", "]", ":", ",", '"events"', '"filter"', '"x"', "null", "1", "-", '"', "\\", " ", "\n", ...RAW_TOKENS]);
      return { kind: "json:tokens", text };
    }
    default: {
      // Duplicate keys, a BOM, trailing garbage, several documents.
      const text = JSON.stringify(value);
      const variants = [`\ufeff${text}`, `${text}${text}`, `${text} garbage`, text.replace("{", '{"events":[],"events":null,'), text.replace("{", '{"filter":{},"filter":{"types":[1]},'), `${text}\u0000`, ` \t\r\n${text}\n`];
      return { kind: "json:document", text: r.pick(variants) };
    }
  }
}

/** Invalid UTF-8: a lone continuation byte, a truncated sequence, an encoded surrogate, an overlong slash. */
function breakUtf8(r: Rng, bytes: Uint8Array): Uint8Array {
  const bad = r.pick([[0x80], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xff], [0xf4, 0x90, 0x80, 0x80]]);
  const at = r.int(bytes.length + 1);
  return concat(bytes.slice(0, at), new Uint8Array(bad), bytes.slice(at));
}

// ---------------------------------------------------------------- the input of one index

export function fuzzInput(seed: number, index: number): FuzzInput {
  const r = new Rng(inputSeed(seed, index));
  const rpc: Rpc = r.chance(0.5) ? "Append" : "SearchEvents";
  const encoding: Encoding = r.chance(0.5) ? "proto" : "json";
  // Most inputs carry a valid writer token, so decoding is reached; searches also
  // as an auditor (filters run against the store); a few carry none or garbage.
  const roll = r.next();
  const token: TokenKind =
    rpc === "Append"
      ? roll < 0.9 ? "writer" : roll < 0.96 ? "none" : "garbage"
      : roll < 0.84 ? "writer" : roll < 0.95 ? "auditor" : roll < 0.98 ? "none" : "garbage";
  let kind: string;
  let body: Uint8Array;
  if (encoding === "proto") {
    const roll2 = r.next();
    if (roll2 < 0.12) {
      kind = "bin:random";
      body = r.bytes(r.chance(0.8) ? r.range(0, 64) : r.range(65, 2048));
    } else if (roll2 < 0.2) {
      kind = "bin:valid";
      body = validBinary(r, seed, rpc);
    } else {
      ({ kind, body } = mutateBinary(r, validBinary(r, seed, rpc), () => validBinary(r, seed, rpc)));
    }
  } else {
    const roll2 = r.next();
    if (roll2 < 0.08) {
      kind = "json:valid";
      body = enc.encode(JSON.stringify(validJson(r, seed, rpc)));
    } else {
      const mutated = mutateJson(r, rpc, validJson(r, seed, rpc));
      kind = mutated.kind;
      body = enc.encode(mutated.text);
      if (r.chance(0.05)) {
        kind += "+bad-utf8";
        body = breakUtf8(r, body);
      }
    }
  }
  const input: FuzzInput = { rpc, encoding, token, kind, body };
  if (r.chance(0.03)) {
    // Compressed bodies: a valid gzip of the input, a truncated one, or bytes that only claim to be gzip.
    input.gzip = true;
    const zipped = gzipSync(body);
    const how = r.int(3);
    input.body = how === 0 ? zipped : how === 1 ? zipped.subarray(0, r.int(zipped.length)) : r.bytes(r.range(1, 64));
    input.kind += ["+gzip", "+gzip-truncated", "+gzip-garbage"][how];
  }
  if (r.chance(0.1)) input.headers = { "connect-protocol-version": r.pick(["1", "2", "x"]) };
  return input;
}

/** One input in a line: enough to recognise it, and the seed and index to regenerate it exactly. */
export function describeInput(seed: number, index: number, input: FuzzInput): string {
  const preview = Buffer.from(input.body.subarray(0, 120)).toString(input.encoding === "json" && !input.gzip ? "utf8" : "hex");
  return `seed=${seed} index=${index} ${input.rpc}/${input.encoding} token=${input.token} kind=${input.kind} bytes=${input.body.length}${input.headers ? ` headers=${JSON.stringify(input.headers)}` : ""} body[0..120]=${JSON.stringify(preview)}`;
}
