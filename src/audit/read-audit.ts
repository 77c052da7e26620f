import { create, toJson } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { EventSchema, EventFilterSchema, Outcome, Severity, type EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import type { Principal } from "../auth/principal.ts";
import type { TenantScope } from "../auth/tenant-scope.ts";
import type { EventLimits } from "../config.ts";
import type { Batcher } from "../ingest/batcher.ts";
import { encodeOnArrival, type PendingEvent } from "../ingest/commit.ts";
import { validateEvent } from "../ingest/validate.ts";
import { failureOf } from "../errors.ts";
import { nowMicros } from "../time.ts";
import type { EventRecord } from "../store/event-row.ts";
import type { CallerInfo } from "./caller.ts";

export type ReadOperation = "search" | "get" | "export" | "tail" | "stats" | "types" | "timeline";

export interface ReadRecord {
  principal: Principal;
  caller: CallerInfo;
  operation: ReadOperation;
  /** Which tenants were read; absent when the call failed before that was decided. */
  scope?: TenantScope;
  filter?: EventFilter;
  /** Operation-specific attributes: result_count, format, phase, ... */
  details: Record<string, string>;
  /** The Connect code and message of a read that failed. */
  failure?: { code: string; message: string };
}

export type RecordRead = (read: ReadRecord) => Promise<void>;

/**
 * Reads leave their own audit events (`auditlog.read.<operation>`) in the log
 * of the tenant they read, through the same batcher as every other event.
 *
 * Fail closed: the returned promise resolves once the event is admitted, and a
 * read whose event cannot be admitted fails instead of answering unaudited.
 * It does not wait for the commit (a search stays fast), and its event may wait
 * up to `maxDelayMs` for a batch, so a burst of reads costs one insert, not
 * one each; a commit failure is logged as an error. A crash loses at most the
 * audit events of reads answered within that window.
 */
export function createReadAuditor(deps: {
  batcher: Batcher<PendingEvent>;
  limits: EventLimits;
  /** Where reads across all tenants by an admin token without a tenant are recorded. */
  adminTenant: string;
  /** How long its event may wait for a batch (see QueryConfig.readAuditMaxDelayMs). */
  maxDelayMs: number;
  /** An admin's read of a tenant that does not exist is recorded in `adminTenant`, not in a log nobody owns. */
  knownTenant: (tenant: string) => boolean;
  /** The tenant's redaction rules: a filter can carry what a client should not have sent. */
  redact: (record: EventRecord) => void;
  log: Logger;
}): RecordRead {
  const clip = (value: string, max = deps.limits.maxAttributeValueBytes) => {
    if (Buffer.byteLength(value) <= max) return value;
    return Buffer.from(value).subarray(0, max - 16).toString("utf8").replace(/\uFFFD$/, "") + "…(truncated)";
  };
  const field = deps.limits.maxFieldBytes;

  return async (read) => {
    const { principal, operation, scope, failure } = read;
    const readTenant = scope?.kind === "tenant" ? scope.tenant : principal.tenant || deps.adminTenant;
    const tenant = deps.knownTenant(readTenant) ? readTenant : deps.adminTenant;
    // Details echo the request (ids, group_by): clipped, or one long id would make the read unauditable.
    const details = Object.fromEntries(Object.entries(read.details).map(([k, v]) => [k, clip(v)]));
    const attributes: Record<string, string> = { ...details, scope: scope?.kind === "tenant" ? scope.tenant : scope ? "*" : "" };
    if (read.filter) attributes.filter = clip(JSON.stringify(toJson(EventFilterSchema, read.filter)));
    if (failure) attributes.error = clip(`${failure.code}: ${failure.message}`);
    const event = create(EventSchema, {
      type: `auditlog.read.${operation}`,
      action: "VIEW",
      outcome: failure ? Outcome.FAILURE : Outcome.SUCCESS,
      severity: failure ? Severity.WARNING : Severity.INFO,
      actor: {
        id: clip(principal.subject || "(token without sub)", field),
        type: "principal",
        ip: read.caller.ip,
        userAgent: clip(read.caller.userAgent, 1024),
      },
      source: "auditlog",
      requestId: clip(read.caller.requestId, field),
      message: failure ? `${operation} failed: ${failure.code}` : `${operation} by ${principal.subject || "a token without sub"}`,
      attributes: Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== "")),
    });
    const result = validateEvent(event, tenant, nowMicros(), deps.limits);
    if (!result.ok) throw new Error(`read audit event is invalid: ${result.invalid.field}: ${result.invalid.reason}`);
    deps.redact(result.record);
    const { committed } = await deps.batcher.submit([{ ...encodeOnArrival(result.record), clientId: false, bytes: result.bytes }], {
      maxDelayMs: deps.maxDelayMs,
      pastTheBound: true,
    });
    committed.catch((err) => deps.log.error({ err, operation, tenant }, "the audit event of a read was not stored"));
  };
}

/** What a read learns about itself while it runs, for its audit event. */
export interface ReadNote {
  scope?: TenantScope;
  details: Record<string, string>;
}

/**
 * Runs a unary read and records it: the result's event once the answer is
 * ready (a read that cannot be recorded fails), or the failure's.
 */
export async function audited<T>(
  record: RecordRead,
  read: Omit<ReadRecord, "details" | "scope" | "failure">,
  body: (note: ReadNote) => Promise<T>,
): Promise<T> {
  const note: ReadNote = { details: {} };
  let result: T;
  try {
    result = await body(note);
  } catch (err) {
    // The caller gets the read's own error; an audit failure on top is logged by the batcher path.
    await record({ ...read, ...note, failure: failureOf(err) }).catch(() => {});
    throw err;
  }
  await record({ ...read, ...note });
  return result;
}
