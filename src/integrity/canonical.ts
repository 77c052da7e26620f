import { createHash } from "node:crypto";
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import type { EventRecord } from "../store/event-row.ts";

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

const OUTCOMES: Record<number, string> = { [Outcome.UNSPECIFIED]: "UNSPECIFIED", [Outcome.SUCCESS]: "SUCCESS", [Outcome.FAILURE]: "FAILURE" };
const SEVERITIES: Record<number, string> = {
  [Severity.UNSPECIFIED]: "UNSPECIFIED",
  [Severity.INFO]: "INFO",
  [Severity.WARNING]: "WARNING",
  [Severity.ERROR]: "ERROR",
  [Severity.CRITICAL]: "CRITICAL",
};

/** A state document's canonical value: its JSON parsed (so formatting does not matter), or null when absent. */
const state = (text: string) => (text === "" ? null : (JSON.parse(text) as unknown));

/**
 * The canonical bytes of a stored event: a JCS array of every field the
 * service stores for it, in a fixed order, times as integer microseconds
 * since the epoch, enums by name. Computable from the stored columns alone,
 * and equally from an exported Event (README, "Tamper evidence").
 */
export function canonicalEvent(r: EventRecord, receivedAtUs: number, chainId: string, seq: number): string {
  return jcs([
    "auditlog.event.v1", r.tenantId, chainId, seq, r.id, r.timeUs, r.utcOffsetMinutes, r.type, r.action,
    OUTCOMES[r.outcome], SEVERITIES[r.severity], r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp,
    r.actorUserAgent, r.resourceType, r.resourceId, r.resourceName, r.source, r.requestId, r.message, r.attributes,
    state(r.before), state(r.after), receivedAtUs,
  ]);
}

/** SHA-256(prev_hash ‖ canonical), both hashes as 64 hex digits (the bytes hashed are the 32 raw bytes). */
export function chainHash(prevHash: string, canonical: string): string {
  return createHash("sha256").update(Buffer.from(prevHash, "hex")).update(canonical).digest("hex");
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
