import type { EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import type { CallerInfo } from "../audit/caller.ts";
import type { ReadNote, RecordRead } from "../audit/read-audit.ts";
import { requirePermission } from "../auth/permissions.ts";
import type { Principal } from "../auth/principal.ts";
import { readScope } from "../auth/tenant-scope.ts";
import { failureOf } from "../errors.ts";
import { openExport, type ExportDeps, type OpenedExport } from "./export.ts";
import type { ExportFormatName } from "./export-sql.ts";

export interface AuditedExportRequest {
  principal: Principal;
  caller: CallerInfo;
  filter: EventFilter | undefined;
  format: ExportFormatName;
  /** CSV only: quote text cells a spreadsheet would take for formulas. */
  formulaSafe?: boolean;
  signal: AbortSignal;
}

export type ExportPart = { contentType: string; fileName: string } | Uint8Array;

/**
 * An export as the RPC and the download route both serve it: first the file's
 * media type and name (once the query has produced its first bytes, so
 * failures come before any success is announced), then the file's bytes. It
 * is recorded twice: before its first byte leaves (phase=opened; a failure to
 * record fails the export), and when it ends (phase=closed): completed,
 * cancelled (the consumer stopped early) or failed, with the rows and bytes
 * delivered.
 */
export async function* auditedExport(deps: ExportDeps & { recordRead: RecordRead }, req: AuditedExportRequest): AsyncGenerator<ExportPart> {
  const base = { principal: req.principal, caller: req.caller, operation: "export" as const, filter: req.filter };
  const note: ReadNote = { details: { format: req.format } };
  let failure: { code: string; message: string } | undefined;
  let ended = "cancelled";
  let progress = { rows: undefined as number | undefined, bytes: 0 };
  let opened: OpenedExport | undefined;
  try {
    requirePermission(req.principal, "QueryService.ExportEvents");
    note.scope = readScope(req.principal, req.filter?.tenantId ?? "");
    opened = await openExport(deps, { scope: note.scope, filter: req.filter, format: req.format, formulaSafe: req.formulaSafe, signal: req.signal });
    progress = opened.progress;
    // Fail closed: no byte leaves before the export is on record.
    await deps.recordRead({ ...base, scope: note.scope, details: { format: req.format, phase: "opened" } });
    yield { contentType: opened.contentType, fileName: opened.fileName };
    yield* opened.chunks;
    ended = "completed";
  } catch (err) {
    if (!req.signal.aborted) {
      failure = failureOf(err);
      ended = "failed";
    }
    throw err;
  } finally {
    await opened?.close();
    note.details.phase = "closed";
    note.details.ended = ended;
    note.details.bytes = String(progress.bytes);
    if (progress.rows !== undefined) note.details.result_count = String(progress.rows);
    await deps.recordRead({ ...base, ...note, failure });
  }
}
