import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMicros } from "../time.ts";
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
}

/** Column order of the insert rows below. */
export const INSERT_COLUMNS = [
  "tenant_id", "id", "time", "utc_offset_minutes", "type", "action", "outcome", "severity",
  "actor_id", "actor_type", "actor_name", "actor_session_id", "actor_ip", "actor_user_agent",
  "resource_type", "resource_id", "resource_name", "source", "request_id", "message",
  "attributes", "before", "after", "received_at", "retention_days",
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

/** ClickHouse's DateTime64 text form, `YYYY-MM-DD hh:mm:ss.ffffff` (UTC). */
export function dateTime64(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(us % 1000).padStart(3, "0")}`;
}

/** One JSONCompactEachRow row in INSERT_COLUMNS order. */
export function toInsertRow(r: EventRecord, receivedAtUs: number, retentionDays: number): unknown[] {
  return [
    r.tenantId, r.id, dateTime64(r.timeUs), r.utcOffsetMinutes, r.type, r.action,
    OUTCOME_NAMES[r.outcome], SEVERITY_NAMES[r.severity],
    r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp, r.actorUserAgent,
    r.resourceType, r.resourceId, r.resourceName, r.source, r.requestId, r.message,
    r.attributes, r.before, r.after, dateTime64(receivedAtUs), retentionDays,
  ];
}

/** What SELECTs read to rebuild an Event; 64-bit values arrive as strings. */
export const SELECT_COLUMNS = `tenant_id, id, toUnixTimestamp64Micro(time) AS time_us, utc_offset_minutes, type, action,
  outcome, severity, actor_id, actor_type, actor_name, actor_session_id, actor_ip, actor_user_agent,
  resource_type, resource_id, resource_name, source, request_id, message, attributes, before, after,
  toUnixTimestamp64Micro(received_at) AS received_at_us`;

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
}

export function fromSelectedRow(row: SelectedRow): Event {
  const hasResource = row.resource_type !== "" || row.resource_id !== "" || row.resource_name !== "";
  return create(EventSchema, {
    id: row.id,
    tenantId: row.tenant_id,
    time: timestampFromMicros(Number(row.time_us)),
    utcOffsetMinutes: row.utc_offset_minutes,
    type: row.type,
    action: row.action,
    outcome: OUTCOME_BY_NAME[row.outcome] ?? Outcome.UNSPECIFIED,
    severity: SEVERITY_BY_NAME[row.severity] ?? Severity.UNSPECIFIED,
    actor: {
      id: row.actor_id,
      type: row.actor_type,
      name: row.actor_name,
      sessionId: row.actor_session_id,
      ip: row.actor_ip,
      userAgent: row.actor_user_agent,
    },
    resource: hasResource ? { type: row.resource_type, id: row.resource_id, name: row.resource_name } : undefined,
    source: row.source,
    requestId: row.request_id,
    message: row.message,
    attributes: row.attributes,
    before: row.before ? (JSON.parse(row.before) as JsonObject) : undefined,
    after: row.after ? (JSON.parse(row.after) as JsonObject) : undefined,
    receivedAt: timestampFromMicros(Number(row.received_at_us)),
  });
}

export const outcomeName = (o: Outcome) => OUTCOME_NAMES[o];
