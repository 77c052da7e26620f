import { create, type JsonObject } from "@bufbuild/protobuf";
import { microsFromTimestamp, timestampFromMicros } from "../time.ts";
import { EventSchema, Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";

/** An event after validation and normalization: what one row of `events` holds. */
export interface EventRecord {
  tenantId: string;
  id: string;
  /** Microseconds since the epoch. */
  timeUs: number;
  utcOffsetMinutes: number;
  type: string;
  action: string;
  outcome: Outcome;
  severity: Severity;
  actorId: string;
  actorType: string;
  actorName: string;
  actorSessionId: string;
  actorIp: string;
  actorUserAgent: string;
  resourceType: string;
  resourceId: string;
  resourceName: string;
  source: string;
  requestId: string;
  message: string;
  attributes: Record<string, string>;
  /** JSON text, "" when absent. */
  before: string;
  after: string;
  /** Set by the committer, just before the insert. */
  link?: ChainLink;
}

/**
 * An event as it waits for its commit, reduced to what the commit needs: its
 * identity, its time, its arrival encodings (made on arrival so the commit
 * step, which runs one batch at a time, only appends the commit-time fields)
 * and, once chained, its link.
 * The rest of the event is inside the row head, from which
 * `recordFromEncoded` rebuilds the whole record (for the live tail). A
 * queued event is then a few objects and a slice of a buffer outside the
 * heap, instead of the decoded record's thirty objects or its encodings'
 * strings, which every scavenge copied while it waited (bench/RESULTS.md,
 * "garbage that dies young").
 */
export interface EncodedRecord {
  tenantId: string;
  id: string;
  /** Microseconds since the epoch. */
  timeUs: number;
  encoded: ArrivalEncoding;
  /** Set by the committer, just before the insert. */
  link?: ChainLink;
}

/**
 * The encodings made on arrival (src/ingest/arrival-encoding.ts), as UTF-8:
 * the canonical body (src/integrity/canonical.ts) up to `rowHeadAt`, then
 * the row head (`insertRowHead`, without its closing bracket).
 */
export interface ArrivalEncoding {
  utf8: Buffer;
  rowHeadAt: number;
}

/** Where an event sits on its hash chain (README, "Tamper evidence"). */
export interface ChainLink {
  chainId: string;
  seq: number;
  prevHash: string;
  hash: string;
  /** On the event a batch's stretch of the chain ends at: the signed checkpoint of that head. */
  checkpoint?: { signature: string; keyId: string };
}

/** Column order of the insert rows below. */
export const INSERT_COLUMNS = [
  "tenant_id", "id", "time", "utc_offset_minutes", "type", "action", "outcome", "severity",
  "actor_id", "actor_type", "actor_name", "actor_session_id", "actor_ip", "actor_user_agent",
  "resource_type", "resource_id", "resource_name", "source", "request_id", "message",
  "attributes", "before", "after", "received_at", "retention_days",
  "chain_id", "seq", "prev_hash", "hash", "checkpoint_signature", "checkpoint_key_id",
] as const;

const OUTCOME_NAMES: Record<number, string> = { [Outcome.UNSPECIFIED]: "UNSPECIFIED", [Outcome.SUCCESS]: "SUCCESS", [Outcome.FAILURE]: "FAILURE" };
const SEVERITY_NAMES: Record<number, string> = {
  [Severity.UNSPECIFIED]: "UNSPECIFIED",
  [Severity.INFO]: "INFO",
  [Severity.WARNING]: "WARNING",
  [Severity.ERROR]: "ERROR",
  [Severity.CRITICAL]: "CRITICAL",
};
const OUTCOME_BY_NAME = Object.fromEntries(Object.entries(OUTCOME_NAMES).map(([n, s]) => [s, Number(n)]));
const SEVERITY_BY_NAME = Object.fromEntries(Object.entries(SEVERITY_NAMES).map(([n, s]) => [s, Number(n)]));

const US_PER_DAY = 86_400_000_000;
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
// Every event of a batch, and nearly every event time, falls on the same day:
// its date text is made once (Date#toISOString was 3% of the ingest profile).
let cachedDay = Number.NaN;
let cachedDayText = "";

/** ClickHouse's DateTime64 text form, `YYYY-MM-DD hh:mm:ss.ffffff` (UTC). */
export function dateTime64(us: number): string {
  const day = Math.floor(us / US_PER_DAY);
  if (day !== cachedDay) {
    cachedDayText = new Date(day * 86_400_000).toISOString().slice(0, 10);
    cachedDay = day;
  }
  const inDayUs = us - day * US_PER_DAY;
  const seconds = Math.floor(inDayUs / 1_000_000);
  const fraction = String(inDayUs - seconds * 1_000_000).padStart(6, "0");
  return `${cachedDayText} ${pad2(Math.floor(seconds / 3600))}:${pad2(Math.floor(seconds / 60) % 60)}:${pad2(seconds % 60)}.${fraction}`;
}

/** One JSONCompactEachRow row in INSERT_COLUMNS order. */
export function toInsertRow(r: EventRecord, receivedAtUs: number, retentionDays: number): unknown[] {
  return JSON.parse(insertRowJson(r, dateTime64(receivedAtUs), retentionDays)) as unknown[];
}

/**
 * The event's columns up to `after` as the start of a JSONCompactEachRow row
 * (no closing bracket): the part known on arrival.
 */
export function insertRowHead(r: EventRecord): string {
  const row = JSON.stringify([
    r.tenantId, r.id, dateTime64(r.timeUs), r.utcOffsetMinutes, r.type, r.action,
    OUTCOME_NAMES[r.outcome], SEVERITY_NAMES[r.severity],
    r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp, r.actorUserAgent,
    r.resourceType, r.resourceId, r.resourceName, r.source, r.requestId, r.message,
    r.attributes, r.before, r.after,
  ]);
  return row.slice(0, -1);
}

/**
 * One JSONCompactEachRow row (one line of text, no newline) in INSERT_COLUMNS
 * order; `receivedAt` is `dateTime64` of the batch's commit time, made once per batch.
 */
export function insertRowJson(r: EventRecord, receivedAt: string, retentionDays: number): string {
  return `${insertRowHead(r)}${insertRowTail(r.link, receivedAt, retentionDays)}`;
}

/** What follows the row head: the columns a commit decides, and the closing bracket. */
export function insertRowTail(link: ChainLink | undefined, receivedAt: string, retentionDays: number): string {
  if (!link) return `,"${receivedAt}",${retentionDays},"",0,"","","",""]`;
  // Dates, numbers and hex hashes need no JSON escaping; the ids and the signature do.
  const checkpoint = link.checkpoint ? `${JSON.stringify(link.checkpoint.signature)},${JSON.stringify(link.checkpoint.keyId)}` : `"",""`;
  return `,"${receivedAt}",${retentionDays},${JSON.stringify(link.chainId)},${link.seq},"${link.prevHash}","${link.hash}",${checkpoint}]`;
}

/** The row head's values, in INSERT_COLUMNS order up to `after`. */
type RowHeadValues = [
  string, string, string, number, string, string, string, string,
  string, string, string, string, string, string,
  string, string, string, string, string, string,
  Record<string, string>, string, string,
];

/** The whole record an event waiting for its commit was made from, with its link. */
export function recordFromEncoded(r: EncodedRecord): EventRecord {
  const v = JSON.parse(`${r.encoded.utf8.toString("utf8", r.encoded.rowHeadAt)}]`) as RowHeadValues;
  return {
    tenantId: v[0], id: v[1], timeUs: r.timeUs, utcOffsetMinutes: v[3], type: v[4], action: v[5],
    outcome: OUTCOME_BY_NAME[v[6]] ?? Outcome.UNSPECIFIED, severity: SEVERITY_BY_NAME[v[7]] ?? Severity.UNSPECIFIED,
    actorId: v[8], actorType: v[9], actorName: v[10], actorSessionId: v[11], actorIp: v[12], actorUserAgent: v[13],
    resourceType: v[14], resourceId: v[15], resourceName: v[16], source: v[17], requestId: v[18], message: v[19],
    attributes: v[20], before: v[21], after: v[22],
    link: r.link,
  };
}

/** What SELECTs read to rebuild an Event; 64-bit values arrive as strings. */
export const SELECT_COLUMNS = `tenant_id, id, toUnixTimestamp64Micro(time) AS time_us, utc_offset_minutes, type, action,
  outcome, severity, actor_id, actor_type, actor_name, actor_session_id, actor_ip, actor_user_agent,
  resource_type, resource_id, resource_name, source, request_id, message, attributes, before, after,
  toUnixTimestamp64Micro(received_at) AS received_at_us, chain_id, seq, prev_hash, hash, checkpoint_signature, checkpoint_key_id`;

export interface SelectedRow {
  tenant_id: string;
  id: string;
  time_us: string;
  utc_offset_minutes: number;
  type: string;
  action: string;
  outcome: string;
  severity: string;
  actor_id: string;
  actor_type: string;
  actor_name: string;
  actor_session_id: string;
  actor_ip: string;
  actor_user_agent: string;
  resource_type: string;
  resource_id: string;
  resource_name: string;
  source: string;
  request_id: string;
  message: string;
  attributes: Record<string, string>;
  before: string;
  after: string;
  received_at_us: string;
  chain_id: string;
  /** UInt64: a string in JSON. */
  seq: string;
  prev_hash: string;
  hash: string;
  checkpoint_signature: string;
  checkpoint_key_id: string;
}

export const fromSelectedRow = (row: SelectedRow): Event => fromRecord(recordFromRow(row), Number(row.received_at_us));

/** The stored event a row holds, as the committer had it (chain link included). */
export function recordFromRow(row: SelectedRow): EventRecord {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    timeUs: Number(row.time_us),
    utcOffsetMinutes: row.utc_offset_minutes,
    type: row.type,
    action: row.action,
    outcome: OUTCOME_BY_NAME[row.outcome] ?? Outcome.UNSPECIFIED,
    severity: SEVERITY_BY_NAME[row.severity] ?? Severity.UNSPECIFIED,
    actorId: row.actor_id,
    actorType: row.actor_type,
    actorName: row.actor_name,
    actorSessionId: row.actor_session_id,
    actorIp: row.actor_ip,
    actorUserAgent: row.actor_user_agent,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    resourceName: row.resource_name,
    source: row.source,
    requestId: row.request_id,
    message: row.message,
    attributes: row.attributes,
    before: row.before,
    after: row.after,
    link: row.chain_id
      ? {
          chainId: row.chain_id,
          seq: Number(row.seq),
          prevHash: row.prev_hash,
          hash: row.hash,
          checkpoint: row.checkpoint_signature ? { signature: row.checkpoint_signature, keyId: row.checkpoint_key_id } : undefined,
        }
      : undefined,
  };
}

/** The stored event an Event message (e.g. a line of an NDJSON export) describes: the inverse of fromRecord. */
export function recordFromEvent(e: Event): EventRecord {
  return {
    tenantId: e.tenantId,
    id: e.id,
    timeUs: e.time ? microsFromTimestamp(e.time) : 0,
    utcOffsetMinutes: e.utcOffsetMinutes,
    type: e.type,
    action: e.action,
    outcome: e.outcome,
    severity: e.severity,
    actorId: e.actor?.id ?? "",
    actorType: e.actor?.type ?? "",
    actorName: e.actor?.name ?? "",
    actorSessionId: e.actor?.sessionId ?? "",
    actorIp: e.actor?.ip ?? "",
    actorUserAgent: e.actor?.userAgent ?? "",
    resourceType: e.resource?.type ?? "",
    resourceId: e.resource?.id ?? "",
    resourceName: e.resource?.name ?? "",
    source: e.source,
    requestId: e.requestId,
    message: e.message,
    attributes: e.attributes,
    before: e.before ? JSON.stringify(e.before) : "",
    after: e.after ? JSON.stringify(e.after) : "",
    link: e.chainId
      ? {
          chainId: e.chainId,
          seq: Number(e.seq),
          prevHash: e.prevHash,
          hash: e.hash,
          checkpoint: e.checkpoint ? { signature: Buffer.from(e.checkpoint.signature).toString("base64"), keyId: e.checkpoint.keyId } : undefined,
        }
      : undefined,
  };
}

export const outcomeName = (o: Outcome) => OUTCOME_NAMES[o];
export const severityName = (s: Severity) => SEVERITY_NAMES[s];

/** The Event a committed record reads back as: what the live tail sends, equal to what a search returns. */
export function fromRecord(r: EventRecord, receivedAtUs: number): Event {
  const hasResource = r.resourceType !== "" || r.resourceId !== "" || r.resourceName !== "";
  return create(EventSchema, {
    id: r.id,
    tenantId: r.tenantId,
    time: timestampFromMicros(r.timeUs),
    utcOffsetMinutes: r.utcOffsetMinutes,
    type: r.type,
    action: r.action,
    outcome: r.outcome,
    severity: r.severity,
    actor: {
      id: r.actorId,
      type: r.actorType,
      name: r.actorName,
      sessionId: r.actorSessionId,
      ip: r.actorIp,
      userAgent: r.actorUserAgent,
    },
    resource: hasResource ? { type: r.resourceType, id: r.resourceId, name: r.resourceName } : undefined,
    source: r.source,
    requestId: r.requestId,
    message: r.message,
    attributes: r.attributes,
    before: r.before ? (JSON.parse(r.before) as JsonObject) : undefined,
    after: r.after ? (JSON.parse(r.after) as JsonObject) : undefined,
    receivedAt: timestampFromMicros(receivedAtUs),
    ...chainFields(r, receivedAtUs),
  });
}

function chainFields(r: EventRecord, receivedAtUs: number) {
  const link = r.link;
  if (!link) return {};
  return {
    chainId: link.chainId,
    seq: BigInt(link.seq),
    prevHash: link.prevHash,
    hash: link.hash,
    checkpoint: link.checkpoint && {
      tenantId: r.tenantId,
      chainId: link.chainId,
      seq: BigInt(link.seq),
      headHash: link.hash,
      time: timestampFromMicros(receivedAtUs),
      signature: Buffer.from(link.checkpoint.signature, "base64"),
      keyId: link.checkpoint.keyId,
    },
  };
}
