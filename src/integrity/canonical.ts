import { hash } from "node:crypto";
import { outcomeName, severityName, type EncodedRecord, type EventRecord } from "../store/event-row.ts";
import type { JsonBytesWriter } from "../wire/json-bytes.ts";

/** The prev_hash of the first event of every chain. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * RFC 8785 (JCS) for the values canonical forms hold: strings, safe integers,
 * null, arrays, and objects (keys sorted by UTF-16 code units). For these,
 * JCS is JSON.stringify with sorted keys, so any language with a JCS library
 * recomputes the same bytes.
 */
export function jcs(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(jcs).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** A state document's canonical JSON: its text parsed (so formatting does not matter) and re-serialized by JCS, or null. */
export const canonicalState = (text: string) => (text === "" ? "null" : jcs(JSON.parse(text)));

/** Keys JS engines order numerically in objects ("7", "42"): JSON.stringify would not keep them sorted. */
const INDEX_LIKE = /^(0|[1-9]\d*)$/;

/**
 * A string map in JCS: an object with its keys inserted in sorted order
 * serializes sorted through the native JSON.stringify, unless a key looks
 * like an array index.
 */
export function canonicalMap(map: Record<string, string>): string {
  const keys = Object.keys(map).sort();
  if (keys.some((k) => INDEX_LIKE.test(k))) return jcs(map);
  const sorted: Record<string, string> = {};
  for (const k of keys) sorted[k] = map[k];
  return JSON.stringify(sorted);
}

/**
 * The canonical bytes of a stored event: a JCS array of every field the
 * service stores for it, in a fixed order, times as integer microseconds
 * since the epoch, enums by name. Computable from the stored columns alone,
 * and equally from an exported Event (README, "Tamper evidence").
 */
export function canonicalEvent(r: EventRecord, receivedAtUs: number, chainId: string, seq: number): string {
  return `${canonicalStart(r.tenantId, chainId, seq)}${canonicalBody(r)}${canonicalEnd(receivedAtUs)}`;
}

/** The canonical array up to its body, and after it. */
const EVENT_TAG = '["auditlog.event.v1",';
const canonicalStart = (tenantId: string, chainId: string, seq: number) => `${EVENT_TAG}${JSON.stringify(tenantId)},${JSON.stringify(chainId)},${seq},`;
const canonicalEnd = (receivedAtUs: number) => `,${receivedAtUs}]`;

/**
 * The fields of the canonical array between `seq` and `received_at` (id to
 * after), joined by commas: what does not depend on where the event lands
 * on its chain, so it can be computed when the event arrives rather than in
 * the one-at-a-time commit step. jcs([...]) spelled out for speed: the
 * scalars through the native JSON.stringify (identical to JCS for strings and
 * safe integers), then the map and the documents.
 */
export function canonicalBody(r: EventRecord): string {
  const scalars = JSON.stringify([
    r.id, r.timeUs, r.utcOffsetMinutes, r.type, r.action,
    outcomeName(r.outcome), severityName(r.severity), r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp,
    r.actorUserAgent, r.resourceType, r.resourceId, r.resourceName, r.source, r.requestId, r.message,
  ]);
  return `${scalars.slice(1, -1)},${canonicalMap(r.attributes)},${canonicalState(r.before)},${canonicalState(r.after)}`;
}

/** SHA-256 of the UTF-8 text prev_hash ‖ canonical (prev_hash as its 64 lower-case hex digits), in hex. */
export function chainHash(prevHash: string, canonical: string): string {
  return hash("sha256", prevHash + canonical, "hex");
}

/**
 * `chainHash(prevHash, canonicalEvent(…))` of an event waiting for its
 * commit, whose canonical body is already UTF-8 (`EncodedRecord`): the
 * bytes are put together in `scratch` instead of making the text again.
 */
export function encodedChainHash(prevHash: string, r: EncodedRecord, receivedAtUs: number, chainId: string, seq: number, scratch: JsonBytesWriter): string {
  scratch.clear();
  scratch.ascii(prevHash);
  scratch.ascii(EVENT_TAG);
  scratch.jsonString(r.tenantId);
  scratch.ascii(",");
  scratch.jsonString(chainId);
  scratch.ascii(`,${seq},`);
  scratch.bytesOf(r.encoded.utf8, 0, r.encoded.rowHeadAt);
  scratch.ascii(canonicalEnd(receivedAtUs));
  return hash("sha256", scratch.written(), "hex");
}

export interface CheckpointFields {
  tenantId: string;
  chainId: string;
  seq: number;
  headHash: string;
  timeUs: number;
}

/** What a checkpoint signature covers. */
export const canonicalCheckpoint = (c: CheckpointFields) =>
  jcs(["auditlog.checkpoint.v1", c.tenantId, c.chainId, c.seq, c.headHash, c.timeUs]);
