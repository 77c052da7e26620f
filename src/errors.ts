import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";

/**
 * Domain failures, independent of the transport. Services throw these; the
 * one interceptor below turns them (and anything unexpected) into Connect
 * codes, which Connect maps to gRPC statuses and HTTP status codes.
 */
export type FailureKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "resource_exhausted"
  | "unavailable";

export class AuditlogError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options);
    this.name = "AuditlogError";
    this.retryAfterMs = options?.retryAfterMs;
  }
  /** For resource_exhausted: when a retry can succeed (the `retry-after` header, in whole seconds). */
  readonly retryAfterMs?: number;
}

export const invalidArgument = (message: string) => new AuditlogError("invalid_argument", message);
export const unauthenticated = (message: string) => new AuditlogError("unauthenticated", message);
export const permissionDenied = (message: string) => new AuditlogError("permission_denied", message);
export const notFound = (message: string) => new AuditlogError("not_found", message);
export const alreadyExists = (message: string) => new AuditlogError("already_exists", message);
export const unavailable = (message: string, cause?: unknown) => new AuditlogError("unavailable", message, { cause });
export const resourceExhausted = (message: string, retryAfterMs: number) =>
  new AuditlogError("resource_exhausted", message, { retryAfterMs });

/** `Retry-After` is whole seconds (RFC 9110); never 0, which would invite an immediate retry. */
export const retryAfterSeconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

const codes: Record<FailureKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/**
 * Anything that is not an AuditlogError or ConnectError is a bug or a storage
 * fault; its details (SQL, stack) go to the log under a reference, never to
 * the caller.
 */
export function toConnectError(err: unknown, log: Logger): ConnectError {
  if (err instanceof AuditlogError) {
    if (err.cause) log.warn({ err: err.cause, kind: err.kind }, err.message);
    // Connect sends error metadata as response headers (gRPC: trailers), where clients look for it.
    const metadata = err.retryAfterMs === undefined ? undefined : { "retry-after": retryAfterSeconds(err.retryAfterMs) };
    return new ConnectError(err.message, codes[err.kind], metadata);
  }
  if (err instanceof ConnectError) {
    // A streamed message that does not decode is the client's mistake (see http/connect-handler.ts).
    if (err.code === Code.Internal && err.rawMessage.startsWith("parse binary: ")) {
      return new ConnectError(
        `a streamed message is not valid protobuf (${err.rawMessage.slice(14)}); check the client uses the current proto/auditlog/v1 contracts`,
        Code.InvalidArgument,
      );
    }
    return err;
  }
  if (isAbort(err)) {
    log.debug("a call was canceled by its caller");
    return new ConnectError("the call was canceled", Code.Canceled);
  }
  if (isTransientStorageError(err)) {
    log.warn({ err }, "storage unavailable");
    return new ConnectError("storage is unavailable right now; retry shortly", Code.Unavailable);
  }
  const ref = Math.random().toString(36).slice(2, 10);
  log.error({ err, ref }, "unexpected error");
  return new ConnectError(`internal error (reference ${ref}); the details are in the server log`, Code.Internal);
}

// ClickHouse error codes that say "not now" rather than "never": overload, limits, network.
const TRANSIENT_CLICKHOUSE_CODES = new Set(["159", "202", "209", "210", "241", "252", "425"]);
const TRANSIENT_NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH"]);

/** The caller went away or gave up (an AbortSignal's reason): its query was stopped, nothing failed. */
const isAbort = (err: unknown) => err instanceof Error && err.name === "AbortError";

/**
 * A store that is down, overloaded or unreachable, as opposed to a query the
 * store refused (a bug: INTERNAL). Matched by class name and code, not
 * instanceof: chdb's connection may bring its own copy of the class.
 */
export function isTransientStorageError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = String((err as { code?: unknown }).code ?? "");
  // Its `name` is "Error": the class name is what both share.
  if (err.constructor.name === "ClickHouseError") return TRANSIENT_CLICKHOUSE_CODES.has(code);
  return TRANSIENT_NETWORK_CODES.has(code) || err.message.includes("Timeout error");
}

export function errorMappingInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    let res;
    try {
      res = await next(req);
    } catch (err) {
      throw toConnectError(err, log);
    }
    if (!res.stream) return res;
    // A server stream fails while it is read, after this interceptor returned.
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw toConnectError(err, log);
        }
      })(),
    };
  };
}

/** The Connect code name (`permission_denied`) and message a failure is reported with, for audit records. */
export function failureOf(err: unknown): { code: string; message: string } {
  if (err instanceof AuditlogError) return { code: err.kind, message: err.message };
  if (err instanceof ConnectError) return { code: codeToString(err.code), message: err.rawMessage };
  if (isAbort(err)) return { code: "canceled", message: "the caller canceled the call" };
  if (isTransientStorageError(err)) return { code: "unavailable", message: "storage is unavailable" };
  return { code: "internal", message: "internal error" };
}

/** An error as the HTTP routes answer it: Connect's status mapping and JSON error body. */
export function httpError(err: unknown, log: Logger): { status: number; body: string; headers: Record<string, string> } {
  const connectError = toConnectError(err, log);
  const retryAfter = connectError.metadata.get("retry-after");
  return {
    // Plain HTTP clients know 429 for "slow down"; Connect maps RESOURCE_EXHAUSTED to it too.
    status: codeToHttpStatus(connectError.code),
    body: JSON.stringify({ code: codeToString(connectError.code), message: connectError.rawMessage }),
    headers: retryAfter ? { "retry-after": retryAfter } : {},
  };
}
