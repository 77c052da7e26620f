import { isDeepStrictEqual } from "node:util";
import { create, createRegistry, equals, fromBinary, fromJson, toBinary, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { mulberry32, realisticEvent } from "../../bench/realistic-events.ts";
import { CheckpointSchema, EventSchema, Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import {
  AppendRequestSchema,
  AppendResponseSchema,
  IngestRequestSchema,
  IngestResponseSchema,
  IngestService,
} from "../../gen/auditlog/v1/ingest_pb.js";
import { decodeEvent } from "../../src/ingest/event-wire.ts";
import { AppendRequestWireSchema, IngestRequestWireSchema, IngestServiceWire } from "../../src/ingest/ingest-wire-schema.ts";

// ---------------------------------------------------------------------------
// Comparing the two decoders

// Unknown fields count too.
const EQUALS_OPTIONS = { registry: createRegistry(), unknown: true };

type Outcome2<T> = { ok: true; value: T } | { ok: false; error: Error };

function attempt<T>(fn: () => T): Outcome2<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

/** Own enumerable keys in order, recursively: protobuf-es's property order. */
function keyOrder(value: unknown, path = "", out: string[] = []): string[] {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return out;
  const keys = Object.keys(value);
  out.push(`${path}{${keys.join(",")}}`);
  for (const k of keys) keyOrder((value as Record<string, unknown>)[k], `${path}.${k}`, out);
  return out;
}

/**
 * Why `decodeEvent(bytes)` differs from `fromBinary(EventSchema, bytes)`, or
 * undefined when both throw or both give the same message: `equals` (with
 * unknown fields), `toJson`, deep strict equality (values, prototypes,
 * `$unknown`, no extra undefined properties) and property order.
 */
function difference(bytes: Uint8Array): string | undefined {
  const ref = attempt(() => fromBinary(EventSchema, bytes));
  const got = attempt(() => decodeEvent(bytes));
  if (!ref.ok && !got.ok) {
    if (!/^cannot decode auditlog\.v1\.Event[,:] .*byte offset \d+/.test(got.error.message)) {
      return `unclear error message: ${got.error.message}`;
    }
    return undefined;
  }
  if (!ref.ok) return `fromBinary throws (${ref.error.message}), decodeEvent does not`;
  if (!got.ok) return `decodeEvent throws (${got.error.message}), fromBinary does not`;
  // equals() follows IEEE: with a NaN in a Struct, a message is unequal to
  // another decoding of itself (deep equality below still compares it).
  const comparable = equals(EventSchema, fromBinary(EventSchema, bytes), ref.value, EQUALS_OPTIONS);
  if (comparable && !equals(EventSchema, got.value, ref.value, EQUALS_OPTIONS)) return "not equals()";
  const refJson = attempt(() => toJson(EventSchema, ref.value));
  const gotJson = attempt(() => toJson(EventSchema, got.value));
  if (refJson.ok !== gotJson.ok) return "toJson throws for one only";
  if (refJson.ok && gotJson.ok && !isDeepStrictEqual(refJson.value, gotJson.value)) return "toJson differs";
  if (!isDeepStrictEqual(got.value, ref.value)) return "not deep strictly equal";
  if (!isDeepStrictEqual(keyOrder(got.value), keyOrder(ref.value))) return "property order differs";
  return undefined;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Asserts both decoders agree, and returns what they did. */
function expectSame(bytes: Uint8Array): Outcome2<Event> {
  expect(difference(bytes), hex(bytes)).toBeUndefined();
  return attempt(() => decodeEvent(bytes));
}

function expectAccepted(bytes: Uint8Array): Event {
  const r = expectSame(bytes);
  if (!r.ok) throw new Error(`expected ${hex(bytes)} to decode: ${r.error.message}`);
  return r.value;
}

function expectRejected(bytes: Uint8Array): Error {
  const r = expectSame(bytes);
  if (r.ok) throw new Error(`expected ${hex(bytes)} to be rejected`);
  return r.error;
}

// ---------------------------------------------------------------------------
// Building wire bytes by hand

type Part = number | string | Uint8Array | Part[];

function bytes(...parts: Part[]): Uint8Array {
  const out: number[] = [];
  const add = (p: Part): void => {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") out.push(...new TextEncoder().encode(p));
    else if (p instanceof Uint8Array) out.push(...p);
    else p.forEach(add);
  };
  parts.forEach(add);
  return new Uint8Array(out);
}

/** A varint; negative numbers as 64-bit two's complement (10 bytes). */
function varint(v: number | bigint): number[] {
  let n = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

const VARINT = 0, I64 = 1, LEN = 2, SGROUP = 3, EGROUP = 4, I32 = 5;

function tag(no: number, wireType: number): number[] {
  return varint(no * 8 + wireType);
}

/** A length-delimited field. */
function ld(no: number, ...payload: Part[]): Uint8Array {
  const p = bytes(...payload);
  return bytes(tag(no, LEN), varint(p.length), p);
}

function vfield(no: number, v: number | bigint): number[] {
  return [...tag(no, VARINT), ...varint(v)];
}

function encode(init: MessageInitShape<typeof EventSchema>): Uint8Array {
  return toBinary(EventSchema, create(EventSchema, init));
}

// ---------------------------------------------------------------------------
// Sample events

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

const realistic = Array.from({ length: 200 }, (_, i) => encode({ ...realisticEvent(i), time: timestampFromMs(T0 - i * 997) }));

const rich: MessageInitShape<typeof EventSchema> = {
  ...realisticEvent(7),
  id: "0195f0c2-7d1e-7c3a-9b4e-2f6a1c0d9e88",
  time: timestampFromMs(T0),
  utcOffsetMinutes: -300,
  before: { plan: "free", seats: 3, tags: ["a", "b"], owner: { id: "u-1", active: true }, note: null, ratio: -0.25 },
  after: { plan: "pro", seats: 10, tags: [], owner: { id: "u-2", active: false }, nested: [[1, 2], { deep: { deeper: "x" } }] },
  receivedAt: create(TimestampSchema, { seconds: 1_768_478_400n, nanos: 123_456_789 }),
  chainId: "tenant-1/writer-a",
  seq: 18_446_744_073_709_551_615n,
  prevHash: "0".repeat(64),
  hash: "ab".repeat(32),
  checkpoint: create(CheckpointSchema, {
    tenantId: "tenant-1",
    chainId: "tenant-1/writer-a",
    seq: 9_007_199_254_740_993n,
    headHash: "cd".repeat(32),
    time: create(TimestampSchema, { seconds: 1_768_478_401n, nanos: 5 }),
    signature: new Uint8Array([1, 2, 3, 250, 251, 252]),
    keyId: "0123456789abcdef",
  }),
};

const samples: Array<[string, MessageInitShape<typeof EventSchema>]> = [
  ["empty event", {}],
  ["realistic", realisticEvent(1)],
  ["before/after Structs, checkpoint, received_at, big seq", rich],
  ["negative utc offset", { ...realisticEvent(2), utcOffsetMinutes: -1080 }],
  ["int32 extremes", { utcOffsetMinutes: -2_147_483_648 }],
  ["int32 max", { utcOffsetMinutes: 2_147_483_647 }],
  ["unknown enum values", { outcome: 99 as Outcome, severity: -7 as Severity }],
  ["time before 1970, negative nanos", { time: create(TimestampSchema, { seconds: -62_135_596_800n, nanos: -1 }) }],
  ["seq 2^63", { seq: 9_223_372_036_854_775_808n }],
  ["seq just above 2^32", { seq: 4_294_967_297n }],
  ["non-ASCII strings", {
    message: "Zugriff verweigert für Jürgen: 日本語テキスト 🚀 ñ",
    actor: { id: "usér-1", name: "Zoë Ångström", userAgent: "Mözilla" },
    resource: { name: "Ĉefa konto" },
    attributes: { "schlüssel": "wert-ä", emoji: "👍🏽", long: "é".repeat(300) },
  }],
  ["NUL and control characters", { message: "a\u0000b\u0001\u007f", attributes: { "": "", "\u0000": "x" } }],
  ["long ASCII strings of every length mod 8", { message: "m".repeat(1000), id: "i".repeat(9), type: "t".repeat(15), action: "a".repeat(16), source: "s".repeat(17) }],
  ["empty messages set", { time: create(TimestampSchema), actor: {}, resource: {}, before: {}, after: {}, receivedAt: create(TimestampSchema), checkpoint: {} }],
  ["attribute keys that look like numbers", { attributes: { "2": "b", "1": "a", "10": "c", x: "d", "-1": "e" } }],
];

// ---------------------------------------------------------------------------

describe("decodeEvent equals fromBinary on valid events", () => {
  it.each(samples)("%s", (_name, init) => {
    const wire = encode(init);
    const ev = expectAccepted(wire);
    expect(toBinary(EventSchema, ev)).toEqual(wire);
  });

  it("drops a leading byte order mark, as protobuf-es (TextDecoder) does", () => {
    const ev = expectAccepted(encode({ id: "\uFEFFid", message: "\uFEFF", type: "a\uFEFF" }));
    expect([ev.id, ev.message, ev.type]).toEqual(["id", "", "a\uFEFF"]);
  });

  it("200 realistic events", () => {
    const diffs = realistic.map((b, i) => [i, difference(b)] as const).filter(([, d]) => d !== undefined);
    expect(diffs).toEqual([]);
  });

  it("gives the same shape as create(EventSchema): defaults, $typeName, no message fields", () => {
    const ev = decodeEvent(new Uint8Array(0));
    expect(ev).toStrictEqual(create(EventSchema));
    expect(Object.keys(ev)).toEqual(Object.keys(create(EventSchema)));
    expect(ev.time).toBeUndefined();
    expect("actor" in ev).toBe(false);
    expect("$unknown" in ev).toBe(false);
  });

  it("decodes sub-messages with their $typeName", () => {
    const ev = decodeEvent(encode(rich));
    expect(ev.time?.$typeName).toBe("google.protobuf.Timestamp");
    expect(ev.actor?.$typeName).toBe("auditlog.v1.Actor");
    expect(ev.resource?.$typeName).toBe("auditlog.v1.Resource");
    expect(ev.checkpoint?.$typeName).toBe("auditlog.v1.Checkpoint");
    expect(ev.seq).toBe(18_446_744_073_709_551_615n);
    expect(ev.utcOffsetMinutes).toBe(-300);
  });

  it("decodes a slice of a larger buffer", () => {
    const inner = encode(rich);
    const big = bytes(0xff, 0xff, inner, 0xff);
    const slice = big.subarray(2, 2 + inner.length);
    expect(difference(slice)).toBeUndefined();
    expect(equals(EventSchema, decodeEvent(slice), decodeEvent(inner))).toBe(true);
  });
});

describe("decodeEvent equals fromBinary on hand-built wire", () => {
  it("repeated scalar fields: the last value wins", () => {
    const ev = expectAccepted(bytes(
      ld(1, "first"), ld(1, "second"),
      vfield(4, 60), vfield(4, -120),
      vfield(7, 1), vfield(7, 2),
      vfield(19, 5), vfield(19, 7),
      ld(13, "a"), ld(13, ""),
    ));
    expect(ev.id).toBe("second");
    expect(ev.utcOffsetMinutes).toBe(-120);
    expect(ev.outcome).toBe(Outcome.FAILURE);
    expect(ev.seq).toBe(7n);
    expect(ev.message).toBe("");
  });

  it("a message field seen twice is merged", () => {
    const ev = expectAccepted(bytes(
      ld(9, ld(1, "u-1"), ld(3, "Ann")),
      ld(3, vfield(1, 100)),
      ld(10, ld(1, "account")),
      ld(9, ld(3, "Bob"), ld(5, "10.0.0.1")),
      ld(3, vfield(2, 7)),
      ld(10, ld(2, "acct-1")),
      ld(17, vfield(1, 5)),
      ld(17, vfield(1, 6)),
    ));
    expect(ev.actor).toMatchObject({ id: "u-1", name: "Bob", ip: "10.0.0.1" });
    expect(ev.time).toMatchObject({ seconds: 100n, nanos: 7 });
    expect(ev.resource).toMatchObject({ type: "account", id: "acct-1" });
    expect(ev.receivedAt?.seconds).toBe(6n);
  });

  it("Struct and Checkpoint fields seen several times are merged", () => {
    const before1 = toBinary(EventSchema, create(EventSchema, { before: { a: 1, b: { x: 1 } }, checkpoint: { tenantId: "t", time: { seconds: 1n } } }));
    const before2 = toBinary(EventSchema, create(EventSchema, { before: { b: { y: 2 }, c: [1] }, after: { z: true }, checkpoint: { seq: 3n, time: { nanos: 4 } } }));
    const ev = expectAccepted(bytes(before1, ld(1, "id"), before2, before1));
    expect(ev.before).toEqual({ a: 1, b: { x: 1 }, c: [1] });
    expect(ev.after).toEqual({ z: true });
    expect(ev.checkpoint).toMatchObject({ tenantId: "t", seq: 3n, time: { seconds: 1n, nanos: 4 } });
  });

  it("a Struct split inside a Value is merged the protobuf-es way", () => {
    // field 15, Struct.fields entry "k" twice: map entries replace, not merge
    const entry = (k: string, v: Part[]) => ld(1, ld(1, k), ld(2, ...v));
    const ev = expectAccepted(bytes(
      ld(15, entry("k", [vfield(4, 1)]), entry("k", [ld(3, "s")]), entry("n", []), entry("m", [ld(6, ld(1, vfield(4, 1)), ld(1))])),
      ld(15, entry("k", [tag(2, I64), 0, 0, 0, 0, 0, 0, 0xf8, 0x7f]), entry("z", [tag(2, I64), 0, 0, 0, 0, 0, 0, 0, 0x80])),
    ));
    expect(ev.before).toStrictEqual({ k: NaN, n: null, m: [true, null], z: -0 });
  });

  it("refuses the attribute key __proto__, which protobuf-es drops silently", () => {
    const input = bytes(ld(1, "id"), ld(14, ld(1, "__proto__"), ld(2, "polluted?")), ld(14, ld(1, "k"), ld(2, "v")));
    expect(fromBinary(EventSchema, input).attributes).toEqual({ k: "v" });
    expect(() => decodeEvent(input)).toThrow('the attribute key "__proto__" is not accepted');
  });

  it("refuses a before, after or nested Struct key __proto__, which protobuf-es drops silently (from the event and its hash)", () => {
    const entry = (k: string, v: Part[]) => ld(1, ld(1, k), ld(2, ...v));
    for (const input of [
      bytes(ld(1, "id"), ld(15, entry("__proto__", [ld(3, "admin")]), entry("x", [vfield(4, 1)]))),
      bytes(ld(1, "id"), ld(16, entry("outer", [ld(5, entry("__proto__", [ld(3, "admin")]))]))),
    ]) {
      const lenient = fromBinary(EventSchema, input);
      expect(JSON.stringify(toJson(EventSchema, lenient))).not.toContain("__proto__");
      expect(() => decodeEvent(input)).toThrow('the key "__proto__" is not accepted in before, after or checkpoint');
    }
  });

  it("map entries: missing key or value, duplicates, unknown fields", () => {
    const ev = expectAccepted(bytes(
      ld(14),
      ld(14, ld(2, "no key")),
      ld(14, ld(1, "no value")),
      ld(14, ld(1, "dup"), ld(2, "first")),
      ld(14, ld(1, "dup"), ld(2, "second")),
      ld(14, ld(2, "value first"), ld(1, "reversed")),
      ld(14, ld(1, "twice"), ld(1, "twice-key"), ld(2, "v1"), ld(2, "v2")),
      // protobuf-es consumes the tag of field 3 and reads on from there
      ld(14, tag(3, VARINT), ld(1, "after-unknown"), ld(2, "v")),
      ld(14, tag(3, LEN), ld(1, "k3"), ld(2, "v3")),
      // wire types of key and value are not checked
      ld(14, tag(1, VARINT), 1, "w", tag(2, I32), 1, "x"),
    ));
    expect(ev.attributes).toEqual({
      "": "no key",
      "no value": "",
      dup: "second",
      reversed: "value first",
      "twice-key": "v2",
      "after-unknown": "v",
      k3: "v3",
      w: "x",
    });
    expect(Object.getPrototypeOf(ev.attributes)).toBe(Object.prototype);
  });

  it("unknown fields of every wire type are skipped and kept in $unknown", () => {
    const ev = expectAccepted(bytes(
      ld(1, "id"),
      vfield(100, 300),
      tag(101, VARINT), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // a 12-byte varint is fine when skipped
      tag(102, I64), 1, 2, 3, 4, 5, 6, 7, 8,
      ld(103, "opaque", 0xff),
      tag(104, I32), 9, 9, 9, 9,
      tag(105, SGROUP), vfield(1, 1), tag(2, SGROUP), ld(3, "x"), tag(2, EGROUP), tag(105, EGROUP),
      tag(536_870_911, VARINT), 1, // the largest field number
      ld(9, ld(1, "u"), vfield(99, 1), tag(98, I32), 1, 2, 3, 4, tag(97, SGROUP), tag(97, EGROUP)),
      ld(3, vfield(1, 1), ld(3, "x"), tag(4, I64), 0, 0, 0, 0, 0, 0, 0, 0),
      ld(10, ld(4, "y")),
      ld(17, tag(5, I32), 0, 0, 0, 0),
      ld(5, "type"),
    ));
    expect(ev.type).toBe("type");
    expect(ev.$unknown?.map((u) => [u.no, u.wireType])).toEqual([[100, 0], [101, 0], [102, 1], [103, 2], [104, 5], [105, 3], [536_870_911, 0]]);
    expect(ev.actor?.$unknown).toHaveLength(3);
    expect(ev.time?.$unknown).toHaveLength(2);
    expect(ev.resource?.$unknown).toHaveLength(1);
    expect(ev.receivedAt?.$unknown).toHaveLength(1);
  });

  it("unknown fields spread over merged occurrences of a message field accumulate", () => {
    const ev = expectAccepted(bytes(ld(9, vfield(20, 1)), ld(9, ld(1, "u")), ld(9, vfield(21, 2))));
    expect(ev.actor?.$unknown?.map((u) => u.no)).toEqual([20, 21]);
  });

  it("the wire type of a known field is not checked: the field's type decides", () => {
    expectAccepted(bytes(tag(1, VARINT), 1, "A")); // string read from a varint tag
    expectAccepted(bytes(tag(1, EGROUP), 1, "B")); // even from an end-group tag
    expectAccepted(bytes(tag(1, SGROUP), 1, "C"));
    expectAccepted(bytes(tag(4, LEN), 5)); // int32 read from a length-delimited tag
    expectAccepted(bytes(tag(19, I64), 5));
    expectAccepted(bytes(tag(9, I32), 3, ld(1, "u"))); // message from a fixed32 tag
    expectAccepted(bytes(tag(3, VARINT), 2, vfield(1, 9)));
    expectAccepted(bytes(tag(14, VARINT), 3, ld(1, "k")));
    expectAccepted(bytes(tag(15, VARINT), 0)); // Struct from a varint tag
    expectAccepted(bytes(tag(22, I32), 2, vfield(3, 1)));
    expectAccepted(bytes(ld(9, tag(1, I64), 1, "u")));
    expect(decodeEvent(bytes(tag(4, LEN), 5)).utcOffsetMinutes).toBe(5);
  });

  it("wire types 6 and 7 and field number 0 are rejected", () => {
    for (const b of [bytes(tag(1, 6), 0), bytes(tag(200, 7), 0), bytes(0x00), bytes(0x02, 0), bytes(ld(9, 0x00)), bytes(ld(14, tag(1, 6)))]) {
      expect(expectRejected(b).message).toMatch(/illegal tag/);
    }
  });

  it("varints: 10-byte int32 and int64, truncated high bits, overlong varints and tags", () => {
    expect(expectAccepted(bytes(vfield(4, -1))).utcOffsetMinutes).toBe(-1);
    // bits above 32 of an int32 are dropped
    expect(expectAccepted(bytes(tag(4, VARINT), 0x81, 0x80, 0x80, 0x80, 0x70)).utcOffsetMinutes).toBe(1);
    expect(expectAccepted(bytes(tag(4, VARINT), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)).utcOffsetMinutes).toBe(-1);
    expect(expectAccepted(bytes(vfield(19, 0xffff_ffff_ffff_ffffn))).seq).toBe(0xffff_ffff_ffff_ffffn);
    // the 10th byte of a 64-bit varint contributes one bit
    expectAccepted(bytes(tag(19, VARINT), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f));
    expectAccepted(bytes(ld(3, tag(1, VARINT), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)));
    // a padded (non-minimal) tag and length are fine
    expectAccepted(bytes(0x8a, 0x80, 0x80, 0x00, 0x81, 0x00, "x"));
    expect(expectRejected(bytes(tag(4, VARINT), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)).message).toMatch(/invalid varint/);
    expect(expectRejected(bytes(tag(19, VARINT), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)).message).toMatch(/invalid varint/);
    expect(expectRejected(bytes(tag(1, LEN), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)).message).toMatch(/invalid varint/);
    expect(expectRejected(bytes(0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 1, "x")).message).toMatch(/overflows uint32/);
    expect(expectRejected(bytes(0x8a, 0x80, 0x80, 0x80, 0x10, 1, "x")).message).toMatch(/overflows uint32/);
    expectAccepted(bytes(0xf8, 0xff, 0xff, 0xff, 0x0f, 0)); // 5-byte tag at the uint32 limit
  });

  it("sub-messages may overrun their declared length within the input, as in protobuf-es", () => {
    // actor says 2 bytes, its first string takes 6: the event goes on after it
    const ev = expectAccepted(bytes(tag(9, LEN), 2, ld(1, "user"), ld(5, "type")));
    expect(ev.actor?.id).toBe("user");
    expect(ev.type).toBe("type");
    expectAccepted(bytes(tag(3, LEN), 1, vfield(1, 300), ld(1, "id")));
    expectAccepted(bytes(tag(14, LEN), 1, ld(1, "key"), ld(2, "v")));
    // the same for fields handed to protobuf-es
    expectAccepted(bytes(tag(15, LEN), 2, ld(1, ld(1, "k"), ld(2, ld(3, "v"))), ld(1, "id")));
    expectAccepted(bytes(tag(22, LEN), 1, ld(1, "tenant"), ld(5, "type")));
    expectAccepted(bytes(ld(22, ld(5, vfield(1, 1))), tag(22, LEN), 1, ld(5, vfield(2, 1))));
  });

  it("a declared length past the end of the input is rejected", () => {
    for (const no of [1, 3, 9, 10, 14, 15, 16, 17, 22, 99]) {
      expect(expectRejected(bytes(tag(no, LEN), 10, 0x08)).message).toMatch(/byte offset \d+/);
    }
  });

  it("groups: unknown groups are skipped, bad ones rejected", () => {
    expectAccepted(bytes(tag(50, SGROUP), tag(51, SGROUP), tag(52, SGROUP), tag(52, EGROUP), tag(51, EGROUP), tag(50, EGROUP)));
    expect(expectRejected(bytes(tag(50, SGROUP), tag(51, EGROUP))).message).toMatch(/end group/);
    expect(expectRejected(bytes(tag(50, EGROUP))).message).toMatch(/wire type 4/);
    expect(expectRejected(bytes(ld(9, tag(50, EGROUP)))).message).toMatch(/wire type 4/);
    expectRejected(bytes(tag(50, SGROUP), vfield(1, 1)));
    expectRejected(bytes(tag(50, SGROUP), tag(51, 7)));
    // protobuf-es allows nesting up to its recursion limit (100, the event counts)
    const nested = (depth: number, no = 60) =>
      bytes(Array.from({ length: depth }, () => tag(no, SGROUP)), Array.from({ length: depth }, () => tag(no, EGROUP)));
    expectAccepted(nested(99));
    expect(expectRejected(nested(100)).message).toMatch(/recursion depth/);
    expectAccepted(ld(9, nested(98)));
    expectRejected(ld(9, nested(99)));
    expectAccepted(ld(3, nested(98)));
    expectRejected(ld(17, nested(99)));
  });

  it("deeply nested Structs hit the same recursion limit", () => {
    let value: Part[] = [vfield(4, 1)];
    let accepted = 0;
    let rejected = 0;
    for (let depth = 1; depth <= 60; depth++) {
      // Value{struct_value: Struct{fields: {"k": value}}}
      value = [ld(5, ld(1, ld(1, "k"), ld(2, ...value)))];
      const r = expectSame(bytes(ld(15, ld(1, ld(1, "k"), ld(2, ...value)))));
      if (r.ok) accepted++;
      else rejected++;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it("invalid UTF-8 is rejected in every string, as protobuf-es (proto3) does", () => {
    const bad = [
      [0xff], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe6, 0x97], [0x61, 0x80, 0x62],
      [...new TextEncoder().encode("12345678"), 0xc3],
    ];
    for (const b of bad) {
      const s = new Uint8Array(b);
      for (const input of [
        bytes(ld(1, s)), bytes(ld(13, s)), bytes(ld(21, s)),
        bytes(ld(9, ld(6, s))), bytes(ld(10, ld(3, s))),
        bytes(ld(14, ld(1, s), ld(2, "v"))), bytes(ld(14, ld(1, "k"), ld(2, s))),
        bytes(ld(15, ld(1, ld(1, s)))), bytes(ld(22, ld(1, s))),
      ]) {
        expect(expectRejected(input).message).toMatch(/UTF-8|utf-8/);
      }
    }
    // but the same bytes are fine where they are skipped
    expectAccepted(bytes(ld(99, 0xff), ld(9, ld(7, 0xc3)), ld(15, ld(2, 0xff))));
  });

  it("error messages say what is wrong and where", () => {
    const cases: Array<[Uint8Array, string | RegExp]> = [
      [bytes(ld(1, "ok"), tag(5, LEN), 10, "abc"),
        "cannot decode auditlog.v1.Event, field type (5) at byte offset 4: premature EOF: string length 10 runs past the end of the input (9 bytes) at byte offset 5"],
      [bytes(ld(1, "ok"), ld(6, 0xff)),
        "cannot decode auditlog.v1.Event, field action (6) at byte offset 4: invalid UTF-8 in string at byte offset 6"],
      [bytes(ld(9, ld(1, "u"), ld(6, 0xc3))),
        "cannot decode auditlog.v1.Event, field actor (9) at byte offset 0: invalid UTF-8 in string at byte offset 7"],
      [bytes(ld(1, "ok"), 0x00), "cannot decode auditlog.v1.Event: illegal tag: field number 0, wire type 0 at byte offset 4"],
      [bytes(ld(1, "ok"), 0x80), "cannot decode auditlog.v1.Event: premature EOF in varint at byte offset 4"],
      [bytes(ld(1, "ok"), tag(4, VARINT), 0x80),
        "cannot decode auditlog.v1.Event, field utc_offset_minutes (4) at byte offset 4: premature EOF in varint at byte offset 5"],
      [bytes(tag(50, EGROUP)),
        "cannot decode auditlog.v1.Event, unknown field 50 at byte offset 0: cannot skip wire type 4: end group without a start group at byte offset 2"],
      [bytes(tag(15, LEN), 3, 0x0a, 0x05, 0x0a), "cannot decode auditlog.v1.Event, field before (15) at byte offset 0: malformed: premature EOF"],
    ];
    for (const [input, message] of cases) {
      expectRejected(input);
      let thrown: unknown;
      try {
        decodeEvent(input);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect((thrown as Error).message).toEqual(message);
    }
  });

  it("truncation at every byte position: both throw or both agree", () => {
    const inputs = [encode(rich), realistic[0], realistic[1], encode(samples[10][1])];
    const diffs: string[] = [];
    let accepted = 0;
    for (const full of inputs) {
      for (let n = 0; n < full.length; n++) {
        const d = difference(full.subarray(0, n));
        if (d !== undefined) diffs.push(`${n}/${full.length}: ${d}`);
        if (attempt(() => fromBinary(EventSchema, full.subarray(0, n))).ok) accepted++;
      }
    }
    expect(diffs).toEqual([]);
    expect(accepted).toBeGreaterThan(10); // cuts between fields are valid events
  });
});

describe("fuzz: random mutations of real encodings", () => {
  it("20,000 mutated inputs: decodeEvent and fromBinary both throw or give the same message", () => {
    const rnd = mulberry32(20260115);
    const int = (n: number) => Math.floor(rnd() * n);
    const corpus = [...realistic.slice(0, 40), encode(rich), ...samples.map(([, init]) => encode(init))];
    const interesting = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1a, 0x22, 0x08, 0x0b, 0x0c, 0x0d, 0x0f, 0x72, 0x7a, 0xb2, 0x01];

    function mutate(src: Uint8Array): Uint8Array {
      let b = Array.from(src);
      const ops = 1 + int(4);
      for (let k = 0; k < ops; k++) {
        const at = int(b.length + 1);
        switch (int(8)) {
          case 0: if (b.length) b[Math.min(at, b.length - 1)] ^= 1 << int(8); break; // flip a bit
          case 1: if (b.length) b[Math.min(at, b.length - 1)] = int(256); break; // set a byte
          case 2: b.splice(at, 0, ...Array.from({ length: 1 + int(3) }, () => int(256))); break; // insert
          case 3: b.splice(at, 1 + int(4)); break; // delete
          case 4: b.splice(at, 0, interesting[int(interesting.length)]); break;
          case 5: if (b.length) b[Math.min(at, b.length - 1)] = interesting[int(interesting.length)]; break;
          case 6: { // duplicate a chunk (repeats fields, breaks lengths)
            const from = int(b.length + 1);
            b.splice(at, 0, ...b.slice(from, from + 1 + int(40)));
            break;
          }
          default: { // splice in bytes of another event
            const other = corpus[int(corpus.length)];
            const from = int(other.length + 1);
            b = b.slice(0, at).concat(Array.from(other.subarray(from, from + 1 + int(60))), b.slice(at + int(20)));
          }
        }
      }
      return new Uint8Array(b);
    }

    const diffs: string[] = [];
    let accepted = 0;
    const N = 20_000;
    for (let i = 0; i < N; i++) {
      const input = mutate(corpus[int(corpus.length)]);
      const d = difference(input);
      if (d !== undefined && diffs.length < 20) diffs.push(`${hex(input)}: ${d}`);
      else if (d === undefined && attempt(() => fromBinary(EventSchema, input)).ok) accepted++;
    }
    expect(diffs).toEqual([]);
    // both outcomes must be well represented for the comparison to mean much
    expect(accepted).toBeGreaterThan(N / 10);
    expect(accepted).toBeLessThan(N - N / 10);
  });
});

describe("IngestServiceWire", () => {
  it("has the generated service's name, methods, kinds and output types", () => {
    expect(IngestServiceWire.typeName).toBe(IngestService.typeName);
    expect(IngestServiceWire.typeName).toBe("auditlog.v1.IngestService");
    const shape = (s: typeof IngestService | typeof IngestServiceWire) =>
      s.methods.map((m) => ({ name: m.name, localName: m.localName, kind: m.methodKind, input: m.input.typeName, output: m.output.typeName, idempotency: m.idempotency }));
    expect(shape(IngestServiceWire)).toEqual(shape(IngestService));
    expect(IngestServiceWire.methods.map((m) => `/${IngestServiceWire.typeName}/${m.name}`)).toEqual([
      "/auditlog.v1.IngestService/Ingest",
      "/auditlog.v1.IngestService/Append",
    ]);
    // the responses are the generated descriptors themselves
    expect(IngestServiceWire.method.ingest.output).toBe(IngestResponseSchema);
    expect(IngestServiceWire.method.append.output).toBe(AppendResponseSchema);
    expect(IngestServiceWire.method.ingest.input).toBe(IngestRequestWireSchema);
    expect(IngestServiceWire.method.append.input).toBe(AppendRequestWireSchema);
    expect(IngestServiceWire.method.ingest.input).not.toBe(IngestRequestSchema);
  });

  it("request variants differ from the generated ones only in the type of `events`", () => {
    for (const [wire, gen] of [[IngestRequestWireSchema, IngestRequestSchema], [AppendRequestWireSchema, AppendRequestSchema]] as const) {
      expect(wire.typeName).toBe(gen.typeName);
      expect(wire.fields.map((f) => [f.number, f.name, f.jsonName, f.fieldKind])).toEqual(gen.fields.map((f) => [f.number, f.name, f.jsonName, f.fieldKind]));
      const events = wire.fields[0];
      expect(events.fieldKind === "list" && events.listKind === "scalar").toBe(true);
    }
  });

  it.each([
    ["Ingest", IngestRequestSchema, IngestRequestWireSchema],
    ["Append", AppendRequestSchema, AppendRequestWireSchema],
  ] as const)("%s: events arrive as byte slices that decodeEvent turns back into the events", (_name, genSchema, wireSchema) => {
    const events = [...realistic.slice(0, 20).map((b) => fromBinary(EventSchema, b)), create(EventSchema), fromBinary(EventSchema, encode(rich))];
    const wire = toBinary(genSchema, create(genSchema, { events }));
    const req = fromBinary(wireSchema, wire);
    expect(req.events).toHaveLength(events.length);
    req.events.forEach((slice, i) => {
      expect(slice).toBeInstanceOf(Uint8Array);
      expect(slice.buffer).toBe(wire.buffer); // a view into the request, not a copy
      const ev = decodeEvent(slice);
      expect(equals(EventSchema, ev, events[i], EQUALS_OPTIONS)).toBe(true);
      expect(toJson(EventSchema, ev)).toEqual(toJson(EventSchema, events[i]));
    });
    // and back: the wire variant encodes to the same bytes
    expect(toBinary(wireSchema, req)).toEqual(wire);
  });

  it("is for the binary encoding only: JSON events are objects, not base64 bytes", () => {
    const json = { events: [{ type: "order.created", actor: { id: "u-1" } }] };
    expect(fromJson(AppendRequestSchema, json).events[0].type).toBe("order.created");
    expect(() => fromJson(AppendRequestWireSchema, json)).toThrow(/events/);
  });
});
