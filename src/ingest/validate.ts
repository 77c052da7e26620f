import { isIP } from "node:net";
import { Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import type { EventLimits } from "../config.ts";
import type { EventRecord } from "../store/event-row.ts";
import { storableMicros } from "../time.ts";
import { FIXED_SIZES, PATTERNS, RESERVED_ATTRIBUTE_PREFIX } from "./rules.ts";
import { serverEventId } from "./uuid7.ts";

/** Why one event cannot be stored; its neighbours are unaffected. */
export interface Invalid {
  field: string;
  reason: string;
}

export type Validated =
  | { ok: true; record: EventRecord; clientId: boolean; /** UTF-8 size, for the size limit and a live tail's queue (the batcher weighs the event by what it holds: `encodeOnArrival`). */ bytes: number }
  | { ok: false; invalid: Invalid };

const { type: TYPE_PATTERN, action: ACTION_PATTERN, id: ID_PATTERN, attributeKey: ATTRIBUTE_KEY_PATTERN } = PATTERNS;
const MAX_OFFSET_MINUTES = FIXED_SIZES.utcOffsetMinutes;
const MAX_STATE_DEPTH = FIXED_SIZES.stateDepth;
const MAX_TYPE_BYTES = FIXED_SIZES.typeBytes;
const MAX_ACTION_BYTES = FIXED_SIZES.actionBytes;
const MAX_USER_AGENT_BYTES = FIXED_SIZES.userAgentBytes;

const byteLength = (s: string) => Buffer.byteLength(s, "utf8");

class Rejected extends Error {
  constructor(readonly invalid: Invalid) {
    super(invalid.reason);
  }
}
function reject(field: string, reason: string): never {
  throw new Rejected({ field, reason });
}

/** The event's UTF-8 size so far: each string is measured once, where its own limit is checked. */
interface Meter {
  bytes: number;
}

function bounded(meter: Meter, field: string, value: string, max: number): string {
  const bytes = byteLength(value);
  if (bytes > max) reject(field, `${field} is ${bytes} bytes; the limit is ${max}`);
  meter.bytes += bytes;
  return value;
}

function required(meter: Meter, field: string, value: string | undefined, max: number): string {
  if (!value) reject(field, `${field} is required`);
  return bounded(meter, field, value, max);
}

/**
 * Checks one event against the documented rules and turns it into the row it
 * will be stored as. `tenantId` has already been decided from the token.
 * Pure apart from the clock (`nowUs`), so it is tested exhaustively.
 */
export function validateEvent(event: Event, tenantId: string, nowUs: number, limits: EventLimits): Validated {
  try {
    return { ok: true, ...normalize(event, tenantId, nowUs, limits) };
  } catch (err) {
    if (err instanceof Rejected) return { ok: false, invalid: err.invalid };
    throw err;
  }
}

function normalize(e: Event, tenantId: string, nowUs: number, limits: EventLimits) {
  const field = limits.maxFieldBytes;
  // 64 bytes of per-row overhead, plus the tenant the token named.
  const m: Meter = { bytes: 64 + byteLength(tenantId) };
  const type = required(m, "type", e.type, MAX_TYPE_BYTES);
  if (!TYPE_PATTERN.test(type)) {
    reject("type", `type "${type}" must be dotted words of letters, digits, _ or - (e.g. customer.account.created)`);
  }
  const action = required(m, "action", e.action, MAX_ACTION_BYTES).toUpperCase();
  if (!ACTION_PATTERN.test(action)) {
    reject("action", `action "${e.action}" must be one word of letters, digits and _ (e.g. CREATE, LOGIN)`);
  }
  const actor = e.actor;
  const actorId = required(m, "actor.id", actor?.id, field);

  const clientId = e.id !== "";
  if (clientId) {
    bounded(m, "id", e.id, FIXED_SIZES.idBytes);
    if (!ID_PATTERN.test(e.id)) reject("id", "id may contain only letters, digits and . _ : @ / -");
  }

  let timeUs = nowUs;
  if (e.time) {
    if (e.time.nanos < 0 || e.time.nanos > 999_999_999) reject("time", "time.nanos must be within 0..999999999");
    const us = storableMicros(e.time);
    if (us === undefined || us < 0) {
      reject("time", "time must be between 1970-01-01T00:00:00Z and now; check that seconds are not milliseconds");
    }
    timeUs = us;
    if (timeUs > nowUs + limits.maxFutureSkewMs * 1000) {
      reject("time", `time ${new Date(timeUs / 1000).toISOString()} is more than ${limits.maxFutureSkewMs / 60000} minutes in the future; check the source's clock`);
    }
  }
  if (!Number.isInteger(e.utcOffsetMinutes) || Math.abs(e.utcOffsetMinutes) > MAX_OFFSET_MINUTES) {
    reject("utc_offset_minutes", `utc_offset_minutes must be within ±${MAX_OFFSET_MINUTES}`);
  }
  if (!(e.outcome in Outcome) || typeof Outcome[e.outcome] !== "string") {
    reject("outcome", `outcome ${e.outcome} is not one of OUTCOME_UNSPECIFIED, OUTCOME_SUCCESS, OUTCOME_FAILURE`);
  }
  if (!(e.severity in Severity) || typeof Severity[e.severity] !== "string") {
    reject("severity", `severity ${e.severity} is not one of SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_ERROR, SEVERITY_CRITICAL`);
  }
  const ip = bounded(m, "actor.ip", actor?.ip ?? "", FIXED_SIZES.ipBytes);
  if (ip !== "" && isIP(ip) === 0) reject("actor.ip", `actor.ip "${ip}" is not an IPv4 or IPv6 address`);

  const message = bounded(m, "message", e.message, limits.maxMessageBytes);
  const attributes = checkAttributes(m, e.attributes, limits);
  const before = stateJson(m, "before", e.before, limits.maxStateBytes);
  const after = stateJson(m, "after", e.after, limits.maxStateBytes);

  const record = {
    tenantId,
    id: clientId ? e.id : serverId(m, nowUs),
    timeUs,
    utcOffsetMinutes: e.utcOffsetMinutes,
    type,
    action,
    outcome: e.outcome,
    severity: e.severity === Severity.UNSPECIFIED ? Severity.INFO : e.severity,
    actorId,
    actorType: bounded(m, "actor.type", actor?.type ?? "", field),
    actorName: bounded(m, "actor.name", actor?.name ?? "", field),
    actorSessionId: bounded(m, "actor.session_id", actor?.sessionId ?? "", field),
    actorIp: ip,
    actorUserAgent: bounded(m, "actor.user_agent", actor?.userAgent ?? "", MAX_USER_AGENT_BYTES),
    resourceType: bounded(m, "resource.type", e.resource?.type ?? "", field),
    resourceId: bounded(m, "resource.id", e.resource?.id ?? "", field),
    resourceName: bounded(m, "resource.name", e.resource?.name ?? "", field),
    source: bounded(m, "source", e.source, field),
    requestId: bounded(m, "request_id", e.requestId, field),
    message,
    attributes,
    before,
    after,
  } satisfies EventRecord;

  const size = m.bytes;
  if (size > limits.maxEventBytes) {
    reject("event", `the event is ${size} bytes; the limit is ${limits.maxEventBytes}. Move bulky content out of before/after/attributes`);
  }
  return { record, clientId, bytes: size };
}

function checkAttributes(m: Meter, attributes: Record<string, string>, limits: EventLimits): Record<string, string> {
  const keys = Object.keys(attributes);
  if (keys.length > limits.maxAttributes) {
    reject("attributes", `${keys.length} attributes; the limit is ${limits.maxAttributes}`);
  }
  for (const key of keys) {
    const keyBytes = byteLength(key);
    if (key === "" || keyBytes > limits.maxAttributeKeyBytes || !ATTRIBUTE_KEY_PATTERN.test(key)) {
      reject("attributes", `attribute key "${key.slice(0, 64)}" must be 1..${limits.maxAttributeKeyBytes} bytes of letters, digits and _ . : -`);
    }
    if (key.startsWith(RESERVED_ATTRIBUTE_PREFIX)) {
      reject("attributes", `attribute key "${key.slice(0, 64)}": keys starting with "${RESERVED_ATTRIBUTE_PREFIX}" are set by the service (e.g. auditlog.redacted)`);
    }
    // Checked here rather than by `bounded`, whose field name would be made for every attribute.
    const valueBytes = byteLength(attributes[key]);
    if (valueBytes > limits.maxAttributeValueBytes) {
      reject(`attributes["${key}"]`, `attributes["${key}"] is ${valueBytes} bytes; the limit is ${limits.maxAttributeValueBytes}`);
    }
    m.bytes += keyBytes + valueBytes;
  }
  return attributes;
}

function stateJson(m: Meter, field: string, value: object | undefined, max: number): string {
  if (value === undefined) return "";
  const text = bounded(m, field, JSON.stringify(value), max);
  if (depthOf(value) > MAX_STATE_DEPTH) {
    // Protobuf readers stop at 100 levels of messages (a Struct level is 2 or 3):
    // a deeper document would make every page holding the event unreadable to them.
    reject(field, `${field} is nested more than ${MAX_STATE_DEPTH} levels deep; flatten it`);
  }
  return text;
}

function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_STATE_DEPTH) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

function serverId(m: Meter, nowUs: number): string {
  const id = serverEventId(Math.floor(nowUs / 1000));
  m.bytes += id.length;
  return id;
}
