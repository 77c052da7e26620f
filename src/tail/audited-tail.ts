import type { EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import type { TailEventsResponse } from "../../gen/auditlog/v1/query_pb.js";
import type { CallerInfo } from "../audit/caller.ts";
import type { RecordRead } from "../audit/read-audit.ts";
import { requirePermission } from "../auth/permissions.ts";
import type { Principal } from "../auth/principal.ts";
import { readScope, type TenantScope } from "../auth/tenant-scope.ts";
import { failureOf } from "../errors.ts";
import type { TailPosition } from "./position.ts";
import { tailEvents, type TailDeps } from "./tail.ts";

export interface AuditedTailRequest {
  principal: Principal;
  caller: CallerInfo;
  filter: EventFilter | undefined;
  after: TailPosition | undefined;
  signal: AbortSignal;
}

/**
 * A tail as the RPC and the WebSocket both serve it. A tail may run for days,
 * so it is recorded twice: when it opens (phase=opened: who watches what) and
 * when it closes (phase=closed, with the events delivered).
 */
export async function* auditedTail(deps: TailDeps & { recordRead: RecordRead }, req: AuditedTailRequest): AsyncGenerator<TailEventsResponse> {
  const base = { principal: req.principal, caller: req.caller, operation: "tail" as const, filter: req.filter };
  const counter = { delivered: 0 };
  let scope: TenantScope | undefined;
  try {
    requirePermission(req.principal, "QueryService.TailEvents");
    scope = readScope(req.principal, req.filter?.tenantId ?? "");
  } catch (err) {
    await deps.recordRead({ ...base, details: { phase: "opened" }, failure: failureOf(err) }).catch(() => {});
    throw err;
  }
  const replay: Record<string, string> = req.after ? { replay: "yes" } : {};
  await deps.recordRead({ ...base, scope, details: { phase: "opened", ...replay } });
  let failure: { code: string; message: string } | undefined;
  try {
    yield* tailEvents(deps, { scope, filter: req.filter, after: req.after, signal: req.signal, validUntilMs: req.principal.validUntilMs }, counter);
  } catch (err) {
    if (!req.signal.aborted) failure = failureOf(err);
    throw err;
  } finally {
    const details = { phase: "closed", result_count: String(counter.delivered), ...replay };
    await deps.recordRead({ ...base, scope, details, failure }).catch(() => {});
  }
}
