import type { Logger } from "pino";
import { callerFromHeaders, plainAddress } from "../audit/caller.ts";
import type { RecordRead } from "../audit/read-audit.ts";
import { bearerToken } from "../auth/bearer.ts";
import type { VerifyToken } from "../auth/verifier.ts";
import { httpError, invalidArgument } from "../errors.ts";
import { auditedExport, type ExportPart } from "../query/audited-export.ts";
import type { ExportDeps } from "../query/export.ts";
import { EXPORT_MEDIA, type ExportFormatName } from "../query/export-sql.ts";
import { filterFromParams } from "./filter-params.ts";
import type { NodeServerRequest, NodeServerResponse } from "./one-port.ts";

export interface ExportRouteDeps extends ExportDeps {
  verify: VerifyToken;
  recordRead: RecordRead;
  log: Logger;
}

const isFormat = (value: string): value is ExportFormatName => Object.hasOwn(EXPORT_MEDIA, value);

/** Node's IncomingMessage headers, read the way fetch's Headers are. */
export const headerReader = (req: NodeServerRequest) => ({
  get: (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(", ") : (value ?? null);
  },
});

/** Resolves once `res` can take more, or rejects when the client is gone. */
function writeWithBackpressure(res: NodeServerResponse, chunk: Uint8Array, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if ((res as { write(c: Uint8Array): boolean }).write(chunk)) return Promise.resolve();
  // The client may have left between the write and here: no drain would come.
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      res.off("drain", onDrain);
      signal.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onAbort = () => done(signal.reason);
    res.once("drain", onDrain);
    signal.addEventListener("abort", onAbort);
  });
}

/** A flag parameter: absent (false), or once as "true" or "false". */
function trueOrFalse(params: URLSearchParams, name: string): boolean {
  const values = params.getAll(name);
  if (values.length === 0) return false;
  if (values.length > 1 || (values[0] !== "true" && values[0] !== "false")) {
    throw invalidArgument(`${name} must be given once, as true or false`);
  }
  return values[0] === "true";
}

/**
 * `GET /v1/export?format=csv|ndjson|parquet&<filter parameters>`: the export
 * as a file download. Errors found before the first byte get their HTTP
 * status and a Connect-style JSON body; a failure mid-file aborts the
 * transfer, so a truncated file never looks complete.
 */
export function exportRoute(deps: ExportRouteDeps) {
  return async (req: NodeServerRequest, res: NodeServerResponse, url: URL): Promise<void> => {
    const abort = new AbortController();
    // "close" also fires after a completed response; aborting then is a no-op.
    res.once("close", () => abort.abort(new Error("the client went away")));
    let parts: AsyncGenerator<ExportPart> | undefined;
    try {
      const principal = await deps.verify(bearerToken(headerReader(req).get("authorization")));
      const format = url.searchParams.get("format") ?? "ndjson";
      if (!isFormat(format)) throw invalidArgument(`format must be one of ${Object.keys(EXPORT_MEDIA).join(", ")}, got ${JSON.stringify(format)}`);
      const filter = filterFromParams(url.searchParams, ["format", "csv_formula_safe"]);
      const formulaSafe = trueOrFalse(url.searchParams, "csv_formula_safe");
      const caller = callerFromHeaders(headerReader(req), plainAddress(req.socket.remoteAddress));
      parts = auditedExport(deps, { principal, caller, filter, format, formulaSafe, signal: abort.signal });
      const first = await parts.next();
      if (first.done || !("contentType" in first.value)) throw new Error("an export starts with its media type");
      res.writeHead(200, {
        "content-type": first.value.contentType,
        "content-disposition": `attachment; filename="${first.value.fileName}"`,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      });
    } catch (err) {
      await parts?.return(undefined);
      if (res.headersSent || abort.signal.aborted) return;
      const { status, body, headers } = httpError(err, deps.log);
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(body);
      return;
    }
    const started = performance.now();
    let bytes = 0;
    try {
      for await (const part of parts) {
        if (!(part instanceof Uint8Array)) continue;
        bytes += part.byteLength;
        await writeWithBackpressure(res, part, abort.signal);
      }
      res.end();
      deps.log.info({ route: "/v1/export", bytes, ms: Math.round(performance.now() - started) }, "export completed");
    } catch (err) {
      if (abort.signal.aborted) {
        deps.log.info({ route: "/v1/export", bytes }, "export cancelled: the client went away");
      } else {
        deps.log.warn({ err, route: "/v1/export", bytes }, "export failed mid-file; the transfer is aborted");
      }
      res.destroy();
    }
  };
}
