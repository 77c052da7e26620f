/**
 * A hand-written binary encoder for `auditlog.v1.Event`.
 *
 * protobuf-es's reflective `toBinary` was a large part of the latency of a
 * search page. `encodeEvent` produces exactly the bytes
 * `toBinary(EventSchema, event)` produces, several times faster: fields in
 * field-number order, proto3 zero values omitted, message fields written when
 * present even if empty, map entries (and `Struct` fields) in object key order
 * with key and value always written, negative int32 as 10-byte varints, lone
 * surrogates as U+FFFD (what TextEncoder writes), and `$unknown` fields after
 * the known ones of each message, as protobuf-es writes them by default.
 * Where `toBinary` throws on a value that does not fit its type (an int32 that
 * is not one, a uint64 out of range), so does this encoder.
 *
 * Assumptions, all true of messages made by `create` or `fromBinary`: message
 * fields are own properties (proto3 messages have no prototype chain), and
 * protobuf-es uses its default text encoding (`configureTextEncoding` not
 * called).
 *
 * Everything is written into one module-level buffer that grows as needed and
 * is reused across calls (encoding is synchronous, so calls never interleave);
 * each call returns a copy of what it wrote. A sub-message gets a one-byte
 * length placeholder and is moved forward in the rare case it is longer than
 * 127 bytes, which is cheaper than computing every size in a first pass.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Actor, Checkpoint, Event, Resource } from "../../gen/auditlog/v1/event_pb.js";

const INITIAL_SIZE = 64 * 1024;
// A page with large before/after documents can grow the buffer a lot; keeping
// that much memory forever for one outlier is not worth it.
const RETAIN_LIMIT = 4 * 1024 * 1024;

let buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_SIZE);
// The same memory as a plain Uint8Array, whose slice() is a Uint8Array (a
// Buffer's would be a Buffer), like toBinary's result.
let view = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
let pos = 0;

/** `toBinary(EventSchema, event)`, byte for byte. */
export function encodeEvent(event: Event): Uint8Array {
  pos = 0;
  writeEvent(event);
  return finish();
}

/**
 * `encodeEvent` of each event. The results are views into one ArrayBuffer:
 * one allocation and copy for all of them instead of one per event.
 */
export function encodeEvents(events: Event[]): Uint8Array[] {
  pos = 0;
  const ends = new Array<number>(events.length);
  for (let i = 0; i < events.length; i++) {
    writeEvent(events[i]);
    ends[i] = pos;
  }
  const all = finish();
  const out = new Array<Uint8Array>(events.length);
  let start = 0;
  for (let i = 0; i < events.length; i++) {
    out[i] = all.subarray(start, ends[i]);
    start = ends[i];
  }
  return out;
}

/**
 * `toBinary(SearchEventsResponseSchema, create(SearchEventsResponseSchema,
 * { events, nextPageToken }))`, byte for byte.
 */
export function encodeSearchEventsResponse(events: Event[], nextPageToken: string): Uint8Array {
  pos = 0;
  for (let i = 0; i < events.length; i++) {
    ensure(1);
    buf[pos++] = 0x0a; // events = 1
    // Most events are 128 bytes to 16 KiB long: a two-byte placeholder saves the move.
    const at = reserve(2);
    writeEvent(events[i]);
    fill(at, 2);
  }
  stringField(0x12, nextPageToken); // next_page_token = 2
  return finish();
}

function finish(): Uint8Array {
  const out = view.slice(0, pos);
  if (buf.length > RETAIN_LIMIT) setBuffer(Buffer.allocUnsafeSlow(INITIAL_SIZE));
  return out;
}

// ---------------------------------------------------------------------------
// Messages. Tags are (field number << 3 | wire type), written as varints.

function writeEvent(e: Event): void {
  stringField(0x0a, e.id);
  stringField(0x12, e.tenantId);
  if (e.time !== undefined) timestampField(0x1a, e.time);
  if (e.utcOffsetMinutes !== 0) int32Field(0x20, e.utcOffsetMinutes, "auditlog.v1.Event.utc_offset_minutes");
  stringField(0x2a, e.type);
  stringField(0x32, e.action);
  if (e.outcome !== 0) int32Field(0x38, e.outcome, "auditlog.v1.Event.outcome");
  if (e.severity !== 0) int32Field(0x40, e.severity, "auditlog.v1.Event.severity");
  if (e.actor !== undefined) writeActor(e.actor);
  if (e.resource !== undefined) writeResource(e.resource);
  stringField(0x5a, e.source);
  stringField(0x62, e.requestId);
  stringField(0x6a, e.message);
  writeAttributes(e.attributes);
  if (e.before !== undefined) structField(0x7a, e.before);
  if (e.after !== undefined) structField((16 << 3) | 2, e.after);
  if (e.receivedAt !== undefined) timestampField((17 << 3) | 2, e.receivedAt);
  stringField((18 << 3) | 2, e.chainId);
  // Loose comparisons, as protobuf-es's: 0n, 0 and "0" all count as unset.
  if (e.seq != ZERO) {
    varint((19 << 3) | 0);
    uint64(e.seq, "auditlog.v1.Event.seq");
  }
  stringField((20 << 3) | 2, e.prevHash);
  stringField((21 << 3) | 2, e.hash);
  if (e.checkpoint !== undefined) writeCheckpoint(e.checkpoint);
  if (e.$unknown !== undefined) writeUnknown(e.$unknown);
}

function writeActor(a: Actor): void {
  varint(0x4a);
  const at = reserve(1);
  stringField(0x0a, a.id);
  stringField(0x12, a.type);
  stringField(0x1a, a.name);
  stringField(0x22, a.sessionId);
  stringField(0x2a, a.ip);
  stringField(0x32, a.userAgent);
  if (a.$unknown !== undefined) writeUnknown(a.$unknown);
  fill(at, 1);
}

function writeResource(r: Resource): void {
  varint(0x52);
  const at = reserve(1);
  stringField(0x0a, r.type);
  stringField(0x12, r.id);
  stringField(0x1a, r.name);
  if (r.$unknown !== undefined) writeUnknown(r.$unknown);
  fill(at, 1);
}

function writeAttributes(attributes: { [key: string]: string }): void {
  // protobuf-es iterates Object.entries, which has the order of Object.keys.
  for (const key of Object.keys(attributes)) {
    varint(0x72);
    const at = reserve(1);
    // Map entries always carry key and value, even empty ones.
    varint(0x0a);
    string(key);
    varint(0x12);
    string(attributes[key]);
    fill(at, 1);
  }
}

function writeCheckpoint(c: Checkpoint): void {
  varint((22 << 3) | 2);
  const at = reserve(1);
  stringField(0x0a, c.tenantId);
  stringField(0x12, c.chainId);
  if (c.seq != ZERO) {
    varint(0x18);
    uint64(c.seq, "auditlog.v1.Checkpoint.seq");
  }
  stringField(0x22, c.headHash);
  if (c.time !== undefined) timestampField(0x2a, c.time);
  if (c.signature.byteLength !== 0) {
    varint(0x32);
    bytes(c.signature);
  }
  stringField(0x3a, c.keyId);
  if (c.$unknown !== undefined) writeUnknown(c.$unknown);
  fill(at, 1);
}

function timestampField(t: number, ts: Timestamp): void {
  varint(t);
  const at = reserve(1);
  if (ts.seconds != ZERO) {
    varint(0x08);
    int64(ts.seconds, "google.protobuf.Timestamp.seconds");
  }
  if (ts.nanos !== 0) int32Field(0x10, ts.nanos, "google.protobuf.Timestamp.nanos");
  if (ts.$unknown !== undefined) writeUnknown(ts.$unknown);
  fill(at, 1);
}

// google.protobuf.Struct is a JsonObject in the message; protobuf-es converts
// it to Struct/Value/ListValue messages and writes those, which is what the
// functions below write directly:
//   Struct    { map<string, Value> fields = 1; }
//   Value     { oneof kind { NullValue null_value = 1; double number_value = 2;
//               string string_value = 3; bool bool_value = 4;
//               Struct struct_value = 5; ListValue list_value = 6; } }
//   ListValue { repeated Value values = 1; }
// A oneof member is written whenever it is the case, zero or not.

function structField(t: number, o: JsonObject): void {
  varint(t);
  const at = reserve(1);
  writeStruct(o);
  fill(at, 1);
}

function writeStruct(o: JsonObject): void {
  for (const key of Object.keys(o)) {
    // protobuf-es copies the entries into a plain object, where assigning
    // "__proto__" sets the prototype instead of adding an entry: that key is
    // dropped from the wire.
    if (key === "__proto__") continue;
    varint(0x0a);
    const entry = reserve(1);
    varint(0x0a);
    string(key);
    varint(0x12);
    const value = reserve(1);
    writeValue(o[key]);
    fill(value, 1);
    fill(entry, 1);
  }
}

function writeValue(v: JsonValue | undefined): void {
  switch (typeof v) {
    case "number":
      ensure(9);
      buf[pos++] = 0x11;
      buf.writeDoubleLE(v, pos);
      pos += 8;
      return;
    case "string":
      varint(0x1a);
      string(v);
      return;
    case "boolean":
      ensure(2);
      buf[pos++] = 0x20;
      buf[pos++] = v ? 1 : 0;
      return;
    case "object": {
      if (v === null) {
        ensure(2);
        buf[pos++] = 0x08;
        buf[pos++] = 0; // NULL_VALUE
        return;
      }
      if (Array.isArray(v)) {
        varint(0x32);
        const list = reserve(1);
        for (const item of v) {
          varint(0x0a);
          const at = reserve(1);
          writeValue(item);
          fill(at, 1);
        }
        fill(list, 1);
        return;
      }
      varint(0x2a);
      const at = reserve(1);
      writeStruct(v);
      fill(at, 1);
      return;
    }
    // Anything else (undefined in an object or an array hole) has no kind: an empty Value.
  }
}

interface Unknown {
  no: number;
  wireType: number;
  data: Uint8Array;
}

function writeUnknown(fields: readonly Unknown[]): void {
  for (const f of fields) {
    varint(((f.no << 3) | f.wireType) >>> 0);
    ensure(f.data.byteLength);
    buf.set(f.data, pos);
    pos += f.data.byteLength;
  }
}

// ---------------------------------------------------------------------------
// Wire primitives

// Measured crossover of the JS loop and Buffer#write (Node 20).
const SHORT_STRING = 32;
const ZERO = BigInt(0);
const UINT32_SPAN = 0x1_0000_0000;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const UINT64_MAX = BigInt("18446744073709551615");
const INT64_MIN = BigInt("-9223372036854775808");
const INT64_MAX = BigInt("9223372036854775807");
const LOW32 = BigInt(0xffffffff);
const THIRTY_TWO = BigInt(32);

function ensure(n: number): void {
  if (pos + n > buf.length) grow(n);
}

function grow(n: number): void {
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafeSlow(size);
  buf.copy(next, 0, 0, pos);
  setBuffer(next);
}

function setBuffer(next: Buffer): void {
  buf = next;
  view = new Uint8Array(next.buffer, next.byteOffset, next.length);
}

/** A uint32 varint: tags, lengths, non-negative int32 values. */
function varint(v: number): void {
  ensure(5);
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x20_0000 ? 3 : v < 0x1000_0000 ? 4 : 5;
}

/** Room for a length of `size` bytes, filled in by `fill` once the content is written. */
function reserve(size: number): number {
  ensure(size);
  const at = pos;
  pos += size;
  return at;
}

function fill(at: number, reserved: number): void {
  const len = pos - at - reserved;
  const size = varintSize(len);
  if (size !== reserved) {
    ensure(size - reserved);
    buf.copyWithin(at + size, at + reserved, pos);
    pos += size - reserved;
  }
  const end = pos;
  pos = at;
  varint(len);
  pos = end;
}

function int32Field(t: number, v: number, field: string): void {
  // toBinary throws on a value that is not an int32 rather than truncating it.
  if ((v | 0) !== v) throw new Error(`cannot encode field ${field} to binary: invalid int32: ${v}`);
  varint(t);
  if (v >= 0) {
    varint(v);
    return;
  }
  // Negative int32 values are sign-extended to 64 bits: always 10 bytes.
  ensure(10);
  for (let i = 0; i < 9; i++) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>= 7;
  }
  buf[pos++] = 1;
}

function uint64(v: bigint, field: string): void {
  if (typeof v !== "bigint") v = BigInt(v);
  if (v < ZERO || v > UINT64_MAX) throw new Error(`cannot encode field ${field} to binary: invalid uint64: ${v}`);
  writeBigVarint(v);
}

function int64(v: bigint, field: string): void {
  if (typeof v !== "bigint") v = BigInt(v);
  if (v < INT64_MIN || v > INT64_MAX) throw new Error(`cannot encode field ${field} to binary: invalid int64: ${v}`);
  // Negative values are written as their 64-bit two's complement.
  writeBigVarint(v < ZERO ? BigInt.asUintN(64, v) : v);
}

/** A varint of an unsigned 64-bit value. */
function writeBigVarint(v: bigint): void {
  ensure(10);
  if (v <= MAX_SAFE) {
    // Number arithmetic is much cheaper than BigInt's, and exact up to 2^53.
    let n = Number(v);
    while (n >= UINT32_SPAN) {
      buf[pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    varint(n);
    return;
  }
  let lo = Number(v & LOW32);
  let hi = Number(v >> THIRTY_TWO);
  // Same bit shuffling as protobuf-es's varint64write: 7 bits at a time across the two halves.
  for (let i = 0; i < 4; i++) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  // 28 bits of lo written; 4 remain, joined with 3 of hi. hi is non-zero here (v > 2^53).
  buf[pos++] = (lo | ((hi & 0x07) << 4)) | 0x80;
  hi >>>= 3;
  while (hi > 0x7f) {
    buf[pos++] = (hi & 0x7f) | 0x80;
    hi >>>= 7;
  }
  buf[pos++] = hi;
}

function stringField(t: number, s: string): void {
  if (s === "") return;
  varint(t);
  string(s);
}

/** A length-prefixed UTF-8 string. */
function string(s: string): void {
  const n = s.length;
  // At most 3 bytes per UTF-16 unit (a surrogate pair is 4 bytes for 2 units), plus the length.
  ensure(5 + 3 * n);
  if (n <= SHORT_STRING) {
    // A JS loop beats the call into C++ for short ASCII strings, the bulk of
    // an event's strings (ids, names, enum-like words). 3 * n < 128, so the
    // length is one byte whatever the content.
    let p = pos + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        // Buffer's UTF-8 encoder, like TextEncoder, writes U+FFFD for a lone surrogate.
        const written = buf.write(s, pos + 1);
        buf[pos] = written;
        pos += 1 + written;
        return;
      }
      buf[p++] = c;
    }
    buf[pos] = n;
    pos = p;
    return;
  }
  // One call into C++ and no Buffer.byteLength: guess the length prefix from
  // the ASCII case (exact there) and move the bytes if the guess was short.
  const guess = varintSize(n);
  const written = buf.write(s, pos + guess);
  const size = varintSize(written);
  if (size !== guess) buf.copyWithin(pos + size, pos + guess, pos + guess + written);
  varint(written);
  pos += written;
}

function bytes(b: Uint8Array): void {
  varint(b.byteLength);
  ensure(b.byteLength);
  buf.set(b, pos);
  pos += b.byteLength;
}
