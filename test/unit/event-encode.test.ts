import { create, fromBinary, toBinary, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { mulberry32, realisticEvent } from "../../bench/realistic-events.ts";
import { EventSchema, Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { SearchEventsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { encodeEvent, encodeEvents, encodeSearchEventsResponse } from "../../src/query/event-encode.ts";
import { fromRecord, recordFromEvent, type EventRecord } from "../../src/store/event-row.ts";

// ---------------------------------------------------------------------------
// Comparing with protobuf-es

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Where two encodings differ, or undefined when they are the same bytes. */
function byteDifference(ours: Uint8Array, reference: Uint8Array): string | undefined {
  const a = Buffer.from(ours.buffer, ours.byteOffset, ours.byteLength);
  const b = Buffer.from(reference.buffer, reference.byteOffset, reference.byteLength);
  if (a.equals(b)) return undefined;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 8);
  return `${a.length} vs ${b.length} bytes, first difference at ${i}: ours …${hex(a.subarray(from, i + 16))}, toBinary …${hex(b.subarray(from, i + 16))}`;
}

function expectSameAsToBinary(event: Event, label = ""): Uint8Array {
  const ours = encodeEvent(event);
  expect(byteDifference(ours, toBinary(EventSchema, event)), label).toBeUndefined();
  return ours;
}

function expectSameResponse(events: Event[], nextPageToken: string, label = ""): Uint8Array {
  const ours = encodeSearchEventsResponse(events, nextPageToken);
  const reference = toBinary(SearchEventsResponseSchema, create(SearchEventsResponseSchema, { events, nextPageToken }));
  expect(byteDifference(ours, reference), label).toBeUndefined();
  return ours;
}

function event(init: MessageInitShape<typeof EventSchema>): Event {
  return create(EventSchema, init);
}

// ---------------------------------------------------------------------------
// Events as the service builds them: record -> fromRecord (src/store/event-row.ts)

const HASH_A = "5e".repeat(32);
const HASH_B = "a7".repeat(32);
const RECEIVED_US = 1_767_225_600_123_456;

function serviceRecord(n: number): EventRecord {
  const r = recordFromEvent(event(realisticEvent(n)));
  r.id = `019b7c2e-${String(n).padStart(4, "0")}-7d3e-9b2a-1c2d3e4f5a6b`;
  r.link = { chainId: "tenant-7/writer-a", seq: 1000 + n, prevHash: HASH_A, hash: HASH_B };
  return r;
}

function signature(seed: number): string {
  const rnd = mulberry32(seed);
  return Buffer.from(Array.from({ length: 64 }, () => Math.floor(rnd() * 256))).toString("base64");
}

const BEFORE = {
  plan: "basic",
  seats: 3,
  price: 19.99,
  active: true,
  trial: false,
  cancelledAt: null,
  tags: ["a", "b", 1, 2.5, true, null, [], {}, [["nested", { deep: [null] }]]],
  billing: { country: "DE", vat: null, address: { street: "Hauptstraße 1", zip: "10115" }, emptyObject: {}, emptyList: [] },
  "10": "integer-like keys come first",
  "2": "in ascending order",
  "": "empty key",
  big: 1.7976931348623157e308,
  tiny: 5e-324,
  negative: -42,
};

describe("encodeEvent equals toBinary(EventSchema) on events built by fromRecord", () => {
  it("realistic events with resource and chain fields", () => {
    for (let n = 0; n < 200; n++) expectSameAsToBinary(fromRecord(serviceRecord(n), RECEIVED_US + n), `event ${n}`);
  });

  it("without resource (fromRecord leaves it unset)", () => {
    const r = serviceRecord(1);
    r.resourceType = r.resourceId = r.resourceName = "";
    const e = fromRecord(r, RECEIVED_US);
    expect(e.resource).toBeUndefined();
    expectSameAsToBinary(e);
  });

  it("with only one resource field set", () => {
    const r = serviceRecord(2);
    r.resourceType = r.resourceName = "";
    expectSameAsToBinary(fromRecord(r, RECEIVED_US));
  });

  it("with before and after documents: nested objects, arrays, numbers, booleans, null", () => {
    const r = serviceRecord(3);
    r.before = JSON.stringify(BEFORE);
    r.after = JSON.stringify({ ...BEFORE, plan: "premium", seats: 10, tags: [...BEFORE.tags, "c"] });
    const e = fromRecord(r, RECEIVED_US);
    expect(e.before).toBeDefined();
    expect(e.after).toBeDefined();
    expectSameAsToBinary(e);
    r.after = "";
    expectSameAsToBinary(fromRecord(r, RECEIVED_US));
    r.before = "{}";
    expectSameAsToBinary(fromRecord(r, RECEIVED_US));
  });

  it("with a checkpoint carrying a signature", () => {
    const r = serviceRecord(4);
    r.link = { ...r.link!, checkpoint: { signature: signature(4), keyId: "0123456789abcdef" } };
    const e = fromRecord(r, RECEIVED_US);
    expect(e.checkpoint?.signature.byteLength).toBe(64);
    expectSameAsToBinary(e);
  });

  it("without a chain link (not yet committed)", () => {
    const r = serviceRecord(5);
    r.link = undefined;
    expectSameAsToBinary(fromRecord(r, RECEIVED_US));
  });

  it("negative and extreme utc offsets, outcomes and severities", () => {
    for (const offset of [-1080, -60, -1, 0, 1, 60, 1080]) {
      for (const outcome of [Outcome.UNSPECIFIED, Outcome.SUCCESS, Outcome.FAILURE]) {
        for (const severity of [Severity.UNSPECIFIED, Severity.INFO, Severity.CRITICAL]) {
          const r = serviceRecord(6);
          Object.assign(r, { utcOffsetMinutes: offset, outcome, severity });
          expectSameAsToBinary(fromRecord(r, RECEIVED_US), `${offset} ${outcome} ${severity}`);
        }
      }
    }
  });

  it("times before 1970 and at the edges of what the store holds", () => {
    for (const us of [Date.UTC(1900, 0, 1) * 1000, -1, 0, 1, 999_999, 1_000_000, Date.UTC(2299, 11, 31, 23, 59, 59) * 1000]) {
      const r = serviceRecord(7);
      r.timeUs = us;
      expectSameAsToBinary(fromRecord(r, us), String(us));
    }
  });

  it("huge seq values", () => {
    for (const seq of [1, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const r = serviceRecord(8);
      r.link = { ...r.link!, seq, checkpoint: { signature: signature(seq), keyId: "k" } };
      expectSameAsToBinary(fromRecord(r, RECEIVED_US), String(seq));
    }
  });

  it("non-ASCII, emoji and lone surrogates in every kind of string", () => {
    const texts = ["Jürgen Müller", "東京都 渋谷区", "😀👩‍👩‍👧‍👦🇩🇪", "a\ud800b", "\udc00", "x\ud83d", "\udc00\ud83d", "€".repeat(50)];
    for (const t of texts) {
      const r = serviceRecord(9);
      Object.assign(r, { actorName: t, message: `${t} ${t}`, resourceName: t, attributes: { [t]: t, plain: t }, before: JSON.stringify({ [t]: [t, { [t]: t }] }) });
      expectSameAsToBinary(fromRecord(r, RECEIVED_US), JSON.stringify(t));
    }
  });

  it("empty strings everywhere and an empty attribute map", () => {
    const r = serviceRecord(10);
    for (const k of Object.keys(r) as (keyof EventRecord)[]) if (typeof r[k] === "string") (r as unknown as Record<string, string>)[k] = "";
    r.attributes = {};
    r.link = { chainId: "", seq: 0, prevHash: "", hash: "", checkpoint: { signature: "", keyId: "" } };
    const e = fromRecord(r, 0);
    expect(Object.keys(e.attributes)).toHaveLength(0);
    expectSameAsToBinary(e);
  });

  it("many attributes, integer-like keys, empty keys and values", () => {
    const attributes: Record<string, string> = { "": "", z: "" };
    for (let i = 0; i < 300; i++) attributes[i % 3 === 0 ? String(1000 - i) : `key_${i}`] = "v".repeat(i);
    const r = serviceRecord(11);
    r.attributes = attributes;
    expectSameAsToBinary(fromRecord(r, RECEIVED_US));
  });

  it("attributes parsed from JSON with an own __proto__ key are written, as protobuf-es writes them", () => {
    const r = serviceRecord(12);
    r.attributes = JSON.parse('{"a":"1","__proto__":"x","b":"2"}') as Record<string, string>;
    const bytes = expectSameAsToBinary(fromRecord(r, RECEIVED_US));
    expect(hex(bytes)).toContain(hex(Buffer.from("__proto__")));
  });

  it("a __proto__ key inside before/after is dropped, as protobuf-es drops it", () => {
    const r = serviceRecord(13);
    r.before = '{"a":1,"__proto__":{"x":2},"b":[{"__proto__":3,"c":4}]}';
    const bytes = expectSameAsToBinary(fromRecord(r, RECEIVED_US));
    expect(hex(bytes)).not.toContain(hex(Buffer.from("__proto__")));
  });
});

// ---------------------------------------------------------------------------

describe("encodeEvent equals toBinary(EventSchema) on edge cases", () => {
  it("the empty event is zero bytes", () => {
    expect(expectSameAsToBinary(event({}))).toHaveLength(0);
  });

  it("a lone surrogate is written as U+FFFD (EF BF BD), as TextEncoder does", () => {
    const bytes = expectSameAsToBinary(event({ id: "a\ud800b" }));
    expect(hex(bytes)).toBe("0a0561efbfbd62");
    const long = "x".repeat(40) + "\udfff";
    expect(hex(expectSameAsToBinary(event({ id: long })))).toBe(`0a2b${"78".repeat(40)}efbfbd`);
  });

  it("message fields are written when set, even when empty", () => {
    const bytes = expectSameAsToBinary(
      event({ time: {}, actor: {}, resource: {}, before: {}, after: {}, receivedAt: {}, checkpoint: {} }),
    );
    expect(hex(bytes)).toBe("1a004a0052007a00820100" + "8a0100" + "b20100");
  });

  it("int32 extremes, unknown enum values and negative enum values (10-byte varints)", () => {
    for (const v of [-(2 ** 31), -1, 1, 2 ** 31 - 1]) {
      const bytes = expectSameAsToBinary(event({ utcOffsetMinutes: v, outcome: v as Outcome, severity: v as Severity }), String(v));
      if (v < 0) expect(bytes).toHaveLength(3 * 11);
    }
  });

  it("uint64 seq across every varint length up to 2^64-1", () => {
    const values: bigint[] = [];
    for (let bits = 0; bits <= 64; bits++) {
      const p = 1n << BigInt(bits);
      values.push(p - 1n, p, p + 1n);
    }
    for (const seq of values.filter((v) => v >= 0n && v < 1n << 64n)) {
      expectSameAsToBinary(event({ seq, checkpoint: { seq } }), String(seq));
    }
  });

  it("Timestamps: negative seconds, int64 extremes, negative and large nanos", () => {
    const stamps: MessageInitShape<typeof TimestampSchema>[] = [
      { seconds: -1n },
      { seconds: -62135596800n, nanos: 1 },
      { seconds: -(1n << 63n) },
      { seconds: (1n << 63n) - 1n, nanos: 999_999_999 },
      { seconds: 253402300799n },
      { seconds: 1n << 53n },
      { nanos: -1 },
      { nanos: 2 ** 31 - 1 },
    ];
    for (const t of stamps) {
      expectSameAsToBinary(event({ time: t, receivedAt: t, checkpoint: { time: t } }), JSON.stringify(t, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    }
  });

  it("checkpoint: signature bytes of any length, all fields, and none", () => {
    for (const len of [0, 1, 64, 127, 128, 300]) {
      const sig = Uint8Array.from({ length: len }, (_, i) => (i * 37) & 0xff);
      expectSameAsToBinary(
        event({ checkpoint: { tenantId: "t", chainId: "c", seq: 5n, headHash: HASH_B, time: { seconds: 1n }, signature: sig, keyId: "k" } }),
        String(len),
      );
    }
    // A Buffer (a Uint8Array) as the signature, as fromRecord passes it.
    expectSameAsToBinary(event({ checkpoint: { signature: Buffer.from("abc") } }));
  });

  it("Struct values: special numbers, empty strings, undefined and array holes", () => {
    const before = {
      negZero: -0,
      zero: 0,
      nan: NaN,
      inf: Infinity,
      negInf: -Infinity,
      empty: "",
      f: false,
      undef: undefined,
      list: [1, undefined, , 3],
    } as unknown as JsonObject;
    expectSameAsToBinary(event({ before, after: { list: [[[[]]]], o: { o: { o: {} } } } }));
  });

  it("deeply nested Structs", () => {
    let deep: JsonValue = "bottom";
    for (let i = 0; i < 60; i++) deep = i % 2 ? { [`k${i}`]: deep, n: i } : [deep, i];
    expectSameAsToBinary(event({ before: { deep } }));
  });

  it("unknown fields are written after the known ones of each message", () => {
    const withUnknown = (): Uint8Array =>
      new Uint8Array([
        ...toBinary(EventSchema, event({ id: "x", time: { seconds: 5n }, actor: { id: "a" }, resource: { id: "r" }, checkpoint: { keyId: "k" } })),
        // Event: field 99 varint, field 23 length-delimited, field 30 fixed32, field 31 fixed64
        0x98, 0x06, 0x2a, 0xba, 0x01, 0x02, 0x68, 0x69, 0xf5, 0x01, 1, 2, 3, 4, 0xf9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,
        // time (field 3) again, with an unknown field 7: merged into time
        0x1a, 0x02, 0x38, 0x01,
        // actor (field 9) again, with an unknown field 15 and a known one
        0x4a, 0x05, 0x78, 0x05, 0x0a, 0x01, 0x62,
        // resource (field 10) with an unknown group 5 { varint 1 }
        0x52, 0x04, 0x2b, 0x08, 0x01, 0x2c,
        // checkpoint (field 22) with unknown field 8
        0xb2, 0x01, 0x02, 0x40, 0x07,
      ]);
    const e = fromBinary(EventSchema, withUnknown());
    expect(e.$unknown).toHaveLength(4);
    expect(e.time?.$unknown).toHaveLength(1);
    expect(e.actor?.$unknown).toHaveLength(1);
    expect(e.resource?.$unknown).toHaveLength(1);
    expect(e.checkpoint?.$unknown).toHaveLength(1);
    expectSameAsToBinary(e);
  });

  it("invalid int32 and uint64 values throw, as toBinary does", () => {
    const bad: MessageInitShape<typeof EventSchema>[] = [
      { utcOffsetMinutes: 1.5 },
      { utcOffsetMinutes: 2 ** 31 },
      { utcOffsetMinutes: NaN },
      { outcome: 0.5 as Outcome },
      { time: { nanos: 1e10 } },
      { seq: -1n },
      { seq: 1n << 64n },
      { checkpoint: { seq: -5n } },
      { time: { seconds: 1n << 63n } },
    ];
    for (const init of bad) {
      const e = event(init);
      expect(() => toBinary(EventSchema, e)).toThrow();
      expect(() => encodeEvent(e)).toThrow(/^cannot encode field (auditlog\.v1|google\.protobuf)\.\w+\.\w+ to binary: invalid u?int(32|64): /);
    }
    // A failed call leaves nothing behind for the next one.
    expectSameAsToBinary(fromRecord(serviceRecord(14), RECEIVED_US));
  });
});

// ---------------------------------------------------------------------------

describe("length prefixes at varint boundaries", () => {
  const kinds: Record<string, (n: number) => string> = {
    ascii: (n) => "a".repeat(n),
    "two-byte at the end": (n) => "a".repeat(Math.max(0, n - 1)) + "é".slice(0, n > 0 ? 1 : 0),
    "three-byte": (n) => "€".repeat(n),
    "surrogate pairs": (n) => "😀".repeat(n >> 1) + "a".repeat(n & 1),
    "lone surrogate at the end": (n) => "a".repeat(Math.max(0, n - 1)) + "\ud800".slice(0, n > 0 ? 1 : 0),
  };
  const lengths = [0, 1, 31, 32, 33, 42, 43, 44, 63, 64, 65, 126, 127, 128, 129, 200, 5461, 5462, 16383, 16384, 16385, 70_000];

  it("strings of every length class and content", () => {
    for (const [kind, make] of Object.entries(kinds)) {
      for (const n of lengths) {
        const s = make(n);
        expect(s.length, kind).toBe(n);
        expectSameAsToBinary(event({ message: s, attributes: { [s]: s } }), `${kind} ${n}`);
      }
    }
  });

  it("sub-messages around 127/128 and 16383/16384 bytes", () => {
    for (const base of [100, 16_350]) {
      for (let n = base; n < base + 40; n++) {
        const pad = "p".repeat(n);
        expectSameAsToBinary(
          event({
            time: { seconds: BigInt(n) },
            actor: { id: pad },
            resource: { name: pad },
            attributes: { k: pad },
            before: { k: pad, l: [pad] },
            checkpoint: { keyId: pad },
          }),
          String(n),
        );
      }
    }
  });

  it("events of a response around 127/128 and 16383/16384 bytes", () => {
    for (const base of [90, 16_330]) {
      for (let n = base; n < base + 60; n++) {
        expectSameResponse([event({ message: "m".repeat(n) }), event({ id: "i".repeat(n - 5) })], "", String(n));
      }
    }
  });

  it("an event larger than the scratch buffer, and one that is shrunk afterwards", () => {
    const big = event({ message: "b".repeat(200_000), before: { list: Array.from({ length: 20_000 }, (_, i) => ({ i })) } });
    expectSameAsToBinary(big);
    const huge = event({ message: "h".repeat(5_000_000) });
    expectSameAsToBinary(huge);
    expectSameResponse([big, huge, big], "token");
    // The scratch buffer is replaced after such a call: still right afterwards.
    expectSameAsToBinary(fromRecord(serviceRecord(15), RECEIVED_US));
  });
});

// ---------------------------------------------------------------------------

describe("results", () => {
  it("are plain Uint8Arrays that later calls do not overwrite", () => {
    const a = event({ id: "first", message: "one" });
    const b = event({ id: "second", message: "two" });
    const first = encodeEvent(a);
    const copy = hex(first);
    encodeEvent(b);
    encodeSearchEventsResponse([b, b], "t");
    expect(hex(first)).toBe(copy);
    expect(first.constructor).toBe(Uint8Array);
    expect(encodeSearchEventsResponse([a], "").constructor).toBe(Uint8Array);
  });

  it("byteDifference reports a difference in content and in length", () => {
    expect(byteDifference(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toMatch(/first difference at 2/);
    expect(byteDifference(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toMatch(/2 vs 3 bytes/);
    expect(byteDifference(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBeUndefined();
  });

  it("encodeEvents encodes each event, and later calls do not overwrite them", () => {
    const events = Array.from({ length: 20 }, (_, i) => fromRecord(serviceRecord(i), RECEIVED_US));
    events.push(event({}), event({ message: "x".repeat(100_000) }), event({}));
    const encoded = encodeEvents(events);
    encodeEvents([event({ id: "overwrite?" }), events[1]]);
    encodeEvent(events[2]);
    expect(encoded).toHaveLength(23);
    encoded.forEach((bytes, i) => expect(byteDifference(bytes, toBinary(EventSchema, events[i])), `event ${i}`).toBeUndefined());
    expect(encodeEvents([])).toEqual([]);
  });
});

describe("encodeSearchEventsResponse equals toBinary(SearchEventsResponseSchema)", () => {
  it("a page of 50 service-built events with a next page token", () => {
    const page = Array.from({ length: 50 }, (_, i) => {
      const r = serviceRecord(100 + i);
      if (i % 7 === 0) r.before = JSON.stringify(BEFORE);
      if (i % 5 === 0) r.link = { ...r.link!, checkpoint: { signature: signature(i), keyId: "0123456789abcdef" } };
      return fromRecord(r, RECEIVED_US + i);
    });
    const bytes = expectSameResponse(page, "eyJ0IjoxNzY3MjI1NjAwMTIzNDU2LCJpZCI6IjAxOWI3YzJlIn0");
    expect(fromBinary(SearchEventsResponseSchema, bytes).events).toHaveLength(50);
  });

  it("the last page (empty token), an empty page, empty events, a non-ASCII token", () => {
    const e = fromRecord(serviceRecord(1), RECEIVED_US);
    expectSameResponse([e], "");
    expect(expectSameResponse([], "")).toHaveLength(0);
    expectSameResponse([], "tok");
    expectSameResponse([event({}), event({}), e], "");
    expectSameResponse([e], "ü😀\ud800" + "t".repeat(200));
  });
});

// ---------------------------------------------------------------------------
// Random events

function randomEvents(count: number, seed: number): Event[] {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const chance = (p: number) => rnd() < p;
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const ALPHABET = [
    "a", "Z", "0", "-", " ", ".", "_", "\n", "\t", "\u0000", "\u007f", "é", "ß", "\u0080", "\u07ff", "\u0800",
    "€", "東", "\uffff", "\ufeff", "😀", "🇩🇪", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d",
  ] as const;
  const string = (): string => {
    if (chance(0.2)) return "";
    const ascii = chance(0.7);
    const len = chance(0.03) ? int(3000) : chance(0.2) ? int(200) : int(40);
    let s = "";
    for (let i = 0; i < len; i++) s += ascii ? String.fromCharCode(32 + int(95)) : pick(ALPHABET);
    return s;
  };
  const int32 = (): number =>
    chance(0.3) ? 0 : chance(0.3) ? int(2000) - 1000 : chance(0.5) ? int(2 ** 32) - 2 ** 31 : pick([-(2 ** 31), 2 ** 31 - 1, -1]);
  const uint64 = (): bigint => (chance(0.2) ? 0n : BigInt.asUintN(int(65), BigInt(int(2 ** 32)) * BigInt(int(2 ** 32)) + BigInt(int(2 ** 32))));
  const int64 = (): bigint => BigInt.asIntN(64, uint64());
  const unknown = () =>
    chance(0.05)
      ? Array.from({ length: 1 + int(3) }, () => ({ no: 100 + int(1000), wireType: 2, data: Uint8Array.from([3, int(256), int(256), int(256)]) }))
      : undefined;
  const timestamp = (): Timestamp | undefined => {
    if (chance(0.2)) return undefined;
    const t = create(TimestampSchema, { seconds: chance(0.7) ? BigInt(int(4e9) - 2e9) : int64(), nanos: chance(0.5) ? int(1e9) : int32() });
    const u = unknown();
    if (u) t.$unknown = u;
    return t;
  };
  const json = (depth: number): JsonValue => {
    const r = int(depth > 3 ? 4 : 6);
    if (r === 0) return chance(0.5) ? int(1e6) - 5e5 : pick([0, -0, 1.5, -1e-300, 1e300, NaN, Infinity, -Infinity, Number.MAX_VALUE]);
    if (r === 1) return string();
    if (r === 2) return chance(0.5);
    if (r === 3) return null;
    if (r === 4) return Array.from({ length: int(6) }, () => json(depth + 1));
    return object(depth + 1);
  };
  const object = (depth: number): JsonObject => {
    const o: JsonObject = {};
    const n = int(8);
    for (let i = 0; i < n; i++) o[chance(0.2) ? String(int(100)) : string()] = json(depth);
    return o;
  };
  const events: Event[] = [];
  for (let i = 0; i < count; i++) {
    const attributes: Record<string, string> = {};
    const nAttr = chance(0.3) ? 0 : chance(0.1) ? int(60) : int(10);
    for (let k = 0; k < nAttr; k++) attributes[chance(0.1) ? String(int(1000)) : string()] = string();
    const e = create(EventSchema, {
      id: string(),
      tenantId: string(),
      time: timestamp(),
      utcOffsetMinutes: int32(),
      type: string(),
      action: string(),
      outcome: chance(0.8) ? pick([0, 1, 2]) : int32(),
      severity: chance(0.8) ? pick([0, 1, 2, 3, 4]) : int32(),
      actor: chance(0.9) ? { id: string(), type: string(), name: string(), sessionId: string(), ip: string(), userAgent: string() } : undefined,
      resource: chance(0.6) ? { type: string(), id: string(), name: string() } : undefined,
      source: string(),
      requestId: string(),
      message: string(),
      attributes,
      before: chance(0.3) ? object(0) : undefined,
      after: chance(0.3) ? object(0) : undefined,
      receivedAt: timestamp(),
      chainId: string(),
      seq: uint64(),
      prevHash: string(),
      hash: string(),
      checkpoint: chance(0.2)
        ? {
            tenantId: string(),
            chainId: string(),
            seq: uint64(),
            headHash: string(),
            time: timestamp(),
            signature: Uint8Array.from({ length: chance(0.2) ? 0 : int(200) }, () => int(256)),
            keyId: string(),
          }
        : undefined,
    });
    for (const m of [e, e.actor, e.resource, e.checkpoint]) {
      const u = unknown();
      if (m && u) m.$unknown = u;
    }
    events.push(e);
  }
  return events;
}

describe("5,000 seeded random events", () => {
  const events = randomEvents(5000, 20260101);

  it("are varied: the generator covers the cases it should", () => {
    expect(events.filter((e) => e.before !== undefined).length).toBeGreaterThan(1000);
    expect(events.filter((e) => e.checkpoint !== undefined).length).toBeGreaterThan(500);
    expect(events.filter((e) => e.utcOffsetMinutes < 0).length).toBeGreaterThan(1000);
    expect(events.filter((e) => e.seq > BigInt(Number.MAX_SAFE_INTEGER)).length).toBeGreaterThan(500);
    expect(events.filter((e) => e.$unknown !== undefined).length).toBeGreaterThan(100);
    expect(events.filter((e) => /[\ud800-\udfff]/.test(e.message)).length).toBeGreaterThan(100);
  });

  it("each encodes to the bytes toBinary gives", () => {
    let differing = 0;
    let firstDifference: string | undefined;
    events.forEach((e, i) => {
      const d = byteDifference(encodeEvent(e), toBinary(EventSchema, e));
      if (d !== undefined) {
        differing++;
        firstDifference ??= `event ${i}: ${d}`;
      }
    });
    expect(firstDifference).toBeUndefined();
    expect(differing).toBe(0);
  });

  it("pages of them encode to the bytes toBinary gives for the response", () => {
    for (let i = 0; i < events.length; i += 50) expectSameResponse(events.slice(i, i + 50), i % 100 ? "" : `page-${i}`, `page ${i / 50}`);
  });
});
