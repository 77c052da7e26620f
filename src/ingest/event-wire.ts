/**
 * A hand-written binary decoder for `auditlog.v1.Event`.
 *
 * protobuf-es's reflective `fromBinary` was the largest single cost of the
 * ingest path. `decodeEvent` gives the same message (`equals`, `toJson`, the
 * same properties in the same order, `$unknown` included) several times
 * faster, by decoding the fields an ingested event actually carries without
 * reflection.
 *
 * "The same" includes protobuf-es's leniencies, so that switching decoders
 * changes nothing a client can observe: the wire type of a known field is not
 * checked (the field's type decides how it is read); a sub-message is read
 * until the reader reaches or passes its declared end, so a string may run past
 * it; unknown fields inside a map entry are neither read nor skipped; varints
 * that overflow 32 or 64 bits are truncated. Where protobuf-es throws, so does
 * this decoder, with the byte offset in the message.
 *
 * The rare, complex fields (`before`, `after`, `checkpoint`) are handed to
 * protobuf-es: the bytes of such a field, tag included, are a complete
 * encoding of an Event with only that field set, so decoding that slice (and
 * merging further occurrences into the result, as protobuf-es does in place)
 * reproduces protobuf-es exactly, down to the recursion limit.
 */
import { fromBinary, mergeFromBinary, type UnknownField } from "@bufbuild/protobuf";
import { getTextEncoding } from "@bufbuild/protobuf/wire";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Actor, type Event, type Resource } from "../../gen/auditlog/v1/event_pb.js";

/** A map entry whose key is "__proto__" (field 1, 9 bytes), as protobuf encodes it. */
const PROTO_KEY_ENTRY = Buffer.concat([Buffer.from([0x0a, 0x09]), Buffer.from("__proto__")]);

interface Cursor {
  buf: Uint8Array;
  pos: number;
}

// protobuf-es allows 100 nested messages and passes the remaining budget to
// the skipping of unknown groups: an Event is at depth 1, its sub-messages at 2.
const EVENT_SKIP_DEPTH = 99;
const NESTED_SKIP_DEPTH = 98;

const WIRE_VARINT = 0;
const WIRE_BIT64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_BIT32 = 5;

export function decodeEvent(bytes: Uint8Array): Event {
  // Property order as protobuf-es produces it: create()'s implicit-presence
  // fields first, message fields as they first appear, `$unknown` last.
  const ev: Event = {
    $typeName: "auditlog.v1.Event",
    id: "",
    tenantId: "",
    utcOffsetMinutes: 0,
    type: "",
    action: "",
    outcome: 0,
    severity: 0,
    source: "",
    requestId: "",
    message: "",
    attributes: {},
    chainId: "",
    seq: 0n,
    prevHash: "",
    hash: "",
  };
  const c: Cursor = { buf: bytes, pos: 0 };
  const len = bytes.length;
  let unknown: UnknownField[] | undefined;
  // Holds before/after/checkpoint as decoded by protobuf-es.
  let rare: Event | undefined;
  // Where the field being read starts, for error messages.
  let tagAt = 0;
  let fieldNo = 0;
  try {
    while (c.pos < len) {
      tagAt = c.pos;
      fieldNo = 0;
      const t = readTag(c);
      fieldNo = t >>> 3;
      switch (fieldNo) {
        case 1: ev.id = readString(c); break;
        case 2: ev.tenantId = readString(c); break;
        case 3: ev.time = readTimestamp(c, ev.time); break;
        case 4: ev.utcOffsetMinutes = readUint32(c) | 0; break;
        case 5: ev.type = readString(c); break;
        case 6: ev.action = readString(c); break;
        case 7: ev.outcome = readUint32(c) | 0; break;
        case 8: ev.severity = readUint32(c) | 0; break;
        case 9: ev.actor = readActor(c, ev.actor); break;
        case 10: ev.resource = readResource(c, ev.resource); break;
        case 11: ev.source = readString(c); break;
        case 12: ev.requestId = readString(c); break;
        case 13: ev.message = readString(c); break;
        case 14: readAttribute(c, ev.attributes); break;
        case 15:
        case 16:
        case 22: {
          const end = messageEnd(c);
          if (end > len) fail(`premature EOF: message runs past the end of the input (${len} bytes)`, tagAt);
          const slice = bytes.subarray(tagAt, end);
          // A Struct entry keyed "__proto__" would vanish in protobuf-es's plain
          // object, from the event and its hash alike: refused, as attribute keys are.
          if (Buffer.from(slice.buffer, slice.byteOffset, slice.byteLength).includes(PROTO_KEY_ENTRY)) {
            throw new Error('the key "__proto__" is not accepted in before, after or checkpoint; rename it');
          }
          try {
            rare = rare === undefined ? fromBinary(EventSchema, slice) : mergeFromBinary(EventSchema, rare, slice);
          } catch {
            // Decoded on its own, the field must end exactly where it says;
            // protobuf-es also accepts a sub-message that overruns its length
            // within the input. Only the whole message can say what that means.
            return decodeWhole(bytes);
          }
          c.pos = end;
          if (fieldNo === 15) ev.before = rare.before;
          else if (fieldNo === 16) ev.after = rare.after;
          else ev.checkpoint = rare.checkpoint;
          break;
        }
        case 17: ev.receivedAt = readTimestamp(c, ev.receivedAt); break;
        case 18: ev.chainId = readString(c); break;
        case 19: ev.seq = readInt64(c, true); break;
        case 20: ev.prevHash = readString(c); break;
        case 21: ev.hash = readString(c); break;
        default: unknown = skipUnknown(c, t, unknown, EVENT_SKIP_DEPTH);
      }
    }
  } catch (err) {
    throw decodeError(err, fieldNo, tagAt);
  }
  if (unknown !== undefined) ev.$unknown = unknown;
  return ev;
}

function decodeError(err: unknown, fieldNo: number, fieldAt: number): Error {
  const name = EventSchema.fields.find((f) => f.number === fieldNo)?.name;
  const where =
    fieldNo === 0 ? "" : name === undefined ? `, unknown field ${fieldNo} at byte offset ${fieldAt}` : `, field ${name} (${fieldNo}) at byte offset ${fieldAt}`;
  return new Error(`cannot decode auditlog.v1.Event${where}: ${(err as Error).message}`, { cause: err });
}

function decodeWhole(bytes: Uint8Array): Event {
  // protobuf-es would drop a "__proto__" map key anywhere in it (an attribute past this point too).
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(PROTO_KEY_ENTRY)) {
    throw new Error('the key "__proto__" is not accepted in attributes, before, after or checkpoint; rename it');
  }
  try {
    return fromBinary(EventSchema, bytes);
  } catch (err) {
    // protobuf-es does not say where; the caller names the field that could
    // not be decoded on its own.
    throw new Error(`malformed: ${(err as Error).message}`, { cause: err });
  }
}

function readActor(c: Cursor, into: Actor | undefined): Actor {
  const a: Actor = into ?? {
    $typeName: "auditlog.v1.Actor",
    id: "",
    type: "",
    name: "",
    sessionId: "",
    ip: "",
    userAgent: "",
  };
  const end = messageEnd(c);
  let unknown = a.$unknown;
  while (c.pos < end) {
    const t = readTag(c);
    switch (t >>> 3) {
      case 1: a.id = readString(c); break;
      case 2: a.type = readString(c); break;
      case 3: a.name = readString(c); break;
      case 4: a.sessionId = readString(c); break;
      case 5: a.ip = readString(c); break;
      case 6: a.userAgent = readString(c); break;
      default: unknown = skipUnknown(c, t, unknown, NESTED_SKIP_DEPTH);
    }
  }
  if (unknown !== undefined) a.$unknown = unknown;
  return a;
}

function readResource(c: Cursor, into: Resource | undefined): Resource {
  const r: Resource = into ?? { $typeName: "auditlog.v1.Resource", type: "", id: "", name: "" };
  const end = messageEnd(c);
  let unknown = r.$unknown;
  while (c.pos < end) {
    const t = readTag(c);
    switch (t >>> 3) {
      case 1: r.type = readString(c); break;
      case 2: r.id = readString(c); break;
      case 3: r.name = readString(c); break;
      default: unknown = skipUnknown(c, t, unknown, NESTED_SKIP_DEPTH);
    }
  }
  if (unknown !== undefined) r.$unknown = unknown;
  return r;
}

function readTimestamp(c: Cursor, into: Timestamp | undefined): Timestamp {
  const ts: Timestamp = into ?? { $typeName: "google.protobuf.Timestamp", seconds: 0n, nanos: 0 };
  const end = messageEnd(c);
  let unknown = ts.$unknown;
  while (c.pos < end) {
    const t = readTag(c);
    switch (t >>> 3) {
      case 1: ts.seconds = readInt64(c, false); break;
      case 2: ts.nanos = readUint32(c) | 0; break;
      default: unknown = skipUnknown(c, t, unknown, NESTED_SKIP_DEPTH);
    }
  }
  if (unknown !== undefined) ts.$unknown = unknown;
  return ts;
}

function readAttribute(c: Cursor, map: { [key: string]: string }): void {
  const end = messageEnd(c);
  // A missing key or value is the empty string.
  let key = "";
  let value = "";
  while (c.pos < end) {
    const t = readTag(c);
    // protobuf-es reads fields 1 and 2 whatever their wire type and neither
    // reads nor skips any other field of a map entry: its tag is consumed and
    // what follows is read as the next tag.
    const no = t >>> 3;
    if (no === 1) key = readString(c);
    else if (no === 2) value = readString(c);
  }
  // protobuf-es would drop this one silently (a plain object cannot hold it as
  // a key): refused instead, so the event is rejected rather than stored without it.
  if (key === "__proto__") throw new Error('the attribute key "__proto__" is not accepted; rename it');
  map[key] = value;
}

/** Reads a sub-message's length; returns where it ends. */
function messageEnd(c: Cursor): number {
  const n = readUint32(c);
  return c.pos + n;
}

function readTag(c: Cursor): number {
  const start = c.pos;
  const b = c.buf[start];
  // Single-byte tags (fields 1-15) are by far the most common.
  if (b < 0x80 && start < c.buf.length) {
    c.pos = start + 1;
    if (b < 8 || (b & 7) > 5) badTag(b, start);
    return b;
  }
  const t = readUint32(c);
  const n = c.pos - start;
  if (n > 5 || (n === 5 && c.buf[c.pos - 1] > 0x0f)) fail("illegal tag: varint overflows uint32", start);
  if (t >>> 3 === 0 || (t & 7) > 5) badTag(t, start);
  return t;
}

function badTag(t: number, offset: number): never {
  fail(`illegal tag: field number ${t >>> 3}, wire type ${t & 7}`, offset);
}

/**
 * protobuf-es's varint32read: reads up to 10 bytes and keeps the low 32 bits,
 * so a negative int32 (10 bytes on the wire) comes out right with `| 0`.
 */
function readUint32(c: Cursor): number {
  const buf = c.buf;
  const len = buf.length;
  const start = c.pos;
  let p = start;
  let v = 0;
  let b = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (p >= len) eofInVarint(start);
    b = buf[p++];
    v |= (b & 0x7f) << shift;
    if (b < 0x80) {
      c.pos = p;
      return v;
    }
  }
  if (p >= len) eofInVarint(start);
  b = buf[p++];
  v |= (b & 0x0f) << 28;
  for (let n = 5; b >= 0x80 && n < 10; n++) {
    if (p >= len) eofInVarint(start);
    b = buf[p++];
  }
  if (b >= 0x80) fail("invalid varint: more than 10 bytes", start);
  c.pos = p;
  return v >>> 0;
}

/** protobuf-es's varint64read (10 bytes at most) and protoInt64.dec/uDec. */
function readInt64(c: Cursor, unsigned: boolean): bigint {
  const buf = c.buf;
  const len = buf.length;
  const start = c.pos;
  let p = start;
  let lo = 0;
  let hi = 0;
  let b = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (p >= len) eofInVarint(start);
    b = buf[p++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      c.pos = p;
      return BigInt(lo);
    }
  }
  if (p >= len) eofInVarint(start);
  b = buf[p++];
  lo |= (b & 0x0f) << 28;
  hi = (b & 0x70) >> 4;
  let done = b < 0x80;
  for (let shift = 3; !done && shift <= 31; shift += 7) {
    if (p >= len) eofInVarint(start);
    b = buf[p++];
    hi |= (b & 0x7f) << shift;
    done = b < 0x80;
  }
  if (!done) fail("invalid varint: more than 10 bytes", start);
  c.pos = p;
  if (hi === 0) return BigInt(lo >>> 0);
  const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return unsigned ? v : BigInt.asIntN(64, v);
}

function readString(c: Cursor): string {
  const start = c.pos;
  const n = readUint32(c);
  const from = c.pos;
  const to = from + n;
  const buf = c.buf;
  if (to > buf.length) fail(`premature EOF: string length ${n} runs past the end of the input (${buf.length} bytes)`, start);
  c.pos = to;
  if (n <= 8) {
    for (let j = from; j < to; j++) if (buf[j] & 0x80) return decodeUtf8(buf, from, to);
    switch (n) {
      case 0: return "";
      case 1: return String.fromCharCode(buf[from]);
      case 2: return String.fromCharCode(buf[from], buf[from + 1]);
      case 3: return String.fromCharCode(buf[from], buf[from + 1], buf[from + 2]);
      case 4: return String.fromCharCode(buf[from], buf[from + 1], buf[from + 2], buf[from + 3]);
      case 5: return String.fromCharCode(buf[from], buf[from + 1], buf[from + 2], buf[from + 3], buf[from + 4]);
      case 6: return String.fromCharCode(buf[from], buf[from + 1], buf[from + 2], buf[from + 3], buf[from + 4], buf[from + 5]);
      case 7: return String.fromCharCode(buf[from], buf[from + 1], buf[from + 2], buf[from + 3], buf[from + 4], buf[from + 5], buf[from + 6]);
      default: return String.fromCharCode(buf[from], buf[from + 1], buf[from + 2], buf[from + 3], buf[from + 4], buf[from + 5], buf[from + 6], buf[from + 7]);
    }
  }
  let high = 0;
  for (let j = from; j < to; j++) high |= buf[j];
  if (high & 0x80) return decodeUtf8(buf, from, to);
  return latin1(buf, from, to);
}

/**
 * ASCII bytes are their own Latin-1 characters: Node's native slice makes
 * the string in one piece. `Buffer#latin1Slice` (what `toString("latin1")`
 * calls, and it works on any Uint8Array) is not documented, so a Node
 * without it gets the documented way, a Buffer view made for each string.
 */
const nativeLatin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;
const latin1: (buf: Uint8Array, from: number, to: number) => string =
  typeof nativeLatin1Slice === "function"
    ? (buf, from, to) => nativeLatin1Slice.call(buf, from, to)
    : (buf, from, to) => Buffer.from(buf.buffer, buf.byteOffset + from, to - from).toString("latin1");

function decodeUtf8(buf: Uint8Array, from: number, to: number): string {
  try {
    // protobuf-es's own decoder: proto3 strings are validated (invalid UTF-8
    // throws), and a leading byte order mark is dropped.
    return getTextEncoding().decodeUtf8(buf.subarray(from, to), true);
  } catch {
    fail("invalid UTF-8 in string", from);
  }
}

/** Skips an unknown field and records it as protobuf-es does in `$unknown`. */
function skipUnknown(c: Cursor, tag: number, unknown: UnknownField[] | undefined, depth: number): UnknownField[] {
  const start = c.pos;
  skip(c, tag & 7, tag >>> 3, depth);
  const field: UnknownField = { no: tag >>> 3, wireType: tag & 7, data: c.buf.subarray(start, c.pos) };
  if (unknown === undefined) return [field];
  unknown.push(field);
  return unknown;
}

/** protobuf-es's BinaryReader.skip. */
function skip(c: Cursor, wireType: number, fieldNo: number, depth: number): void {
  const buf = c.buf;
  const start = c.pos;
  switch (wireType) {
    case WIRE_VARINT: {
      // No length limit here, unlike a varint that is read.
      let p = start;
      for (;;) {
        if (p >= buf.length) eofInVarint(start);
        if (buf[p++] < 0x80) break;
      }
      c.pos = p;
      return;
    }
    case WIRE_BIT64:
      c.pos += 8;
      break;
    case WIRE_BIT32:
      c.pos += 4;
      break;
    case WIRE_LEN: {
      const n = readUint32(c);
      c.pos += n;
      break;
    }
    case WIRE_START_GROUP:
      if (depth <= 0) fail(`maximum recursion depth reached in group of field ${fieldNo}`, start);
      for (;;) {
        const tagAt = c.pos;
        const t = readTag(c);
        if ((t & 7) === WIRE_END_GROUP) {
          if (t >>> 3 !== fieldNo) fail(`invalid end group tag: field ${t >>> 3} closes a group of field ${fieldNo}`, tagAt);
          break;
        }
        skip(c, t & 7, t >>> 3, depth - 1);
      }
      break;
    default:
      fail(`cannot skip wire type ${wireType}: end group without a start group`, start);
  }
  if (c.pos > buf.length) fail(`premature EOF: unknown field ${fieldNo} runs past the end of the input (${buf.length} bytes)`, start);
}

function eofInVarint(offset: number): never {
  fail("premature EOF in varint", offset);
}

function fail(what: string, offset: number): never {
  throw new Error(`${what} at byte offset ${offset}`);
}
