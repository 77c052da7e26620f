import { STATUS_CODES } from "node:http";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { toJson } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import { TailEventsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { callerFromHeaders, plainAddress } from "../audit/caller.ts";
import type { RecordRead } from "../audit/read-audit.ts";
import { bearerToken } from "../auth/bearer.ts";
import type { Principal } from "../auth/principal.ts";
import type { VerifyToken } from "../auth/verifier.ts";
import { AuditlogError, failureOf, httpError } from "../errors.ts";
import { auditedTail } from "../tail/audited-tail.ts";
import { startPosition, type TailPosition } from "../tail/position.ts";
import type { TailDeps } from "../tail/tail.ts";
import { filterFromParams, parseRfc3339 } from "./filter-params.ts";
import type { EventFilter } from "../../gen/auditlog/v1/event_pb.js";

export interface TailSocketDeps extends TailDeps {
  verify: VerifyToken;
  recordRead: RecordRead;
  log: Logger;
}

/** The subprotocol a browser offers next to its token, and the one the server selects. */
export const TAIL_PROTOCOL = "auditlog.v1";
const TOKEN_PROTOCOL_PREFIX = "bearer.";
const PING_INTERVAL_MS = 30_000;

/**
 * Browsers cannot set headers on a WebSocket, so the token may also come as a
 * subprotocol `bearer.<token>`, offered together with `auditlog.v1` (the one
 * the server selects, so the token is never echoed back).
 */
function tokenOf(req: IncomingMessage): string {
  const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
  const fromProtocol = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (fromProtocol && !req.headers.authorization) return fromProtocol.slice(TOKEN_PROTOCOL_PREFIX.length);
  return bearerToken(req.headers.authorization);
}

/** WebSocket close codes: 1008 for what the client must change, 1001 when the server leaves, 1011 otherwise. */
function closeCode(code: string): number {
  if (["invalid_argument", "unauthenticated", "permission_denied", "not_found"].includes(code)) return 1008;
  return code === "unavailable" ? 1001 : 1011;
}

function send(ws: WebSocket, text: string): Promise<void> {
  // The callback fires once the frame is handed to the socket: awaiting it is
  // the backpressure that makes a slow reader lag instead of growing a buffer.
  return new Promise((resolve, reject) => ws.send(text, (err) => (err ? reject(err) : resolve())));
}

/**
 * `GET /v1/tail?<filter parameters>[&cursor=...|&since=<RFC 3339>]` upgraded
 * to a WebSocket: each TailEventsResponse as one JSON text frame, exactly as
 * the TailEvents RPC sends it in Connect JSON. A failure arrives as a final
 * `{"error":{"code","message"}}` frame, then the close.
 */
export function tailSocket(deps: TailSocketDeps) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    handleProtocols: (offered) => (offered.has(TAIL_PROTOCOL) ? TAIL_PROTOCOL : false),
  });

  return async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    let principal: Principal;
    let filter: EventFilter;
    let after: TailPosition | undefined;
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      principal = await deps.verify(tokenOf(req));
      filter = filterFromParams(url.searchParams, ["cursor", "since"]);
      const since = url.searchParams.get("since");
      after = startPosition(url.searchParams.get("cursor") ?? "", since ? parseRfc3339("since", since) : undefined);
    } catch (err) {
      const { status, body, headers } = httpError(err, deps.log);
      const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const abort = new AbortController();
      const ping = setInterval(() => ws.ping(), PING_INTERVAL_MS);
      ping.unref();
      ws.on("close", () => {
        clearInterval(ping);
        abort.abort(new Error("the client closed the tail"));
      });
      ws.on("error", () => abort.abort(new Error("the tail socket failed")));
      const caller = callerFromHeaders({ get: (n) => (req.headers[n] as string | undefined) ?? null }, plainAddress(req.socket.remoteAddress));
      void (async () => {
        try {
          for await (const message of auditedTail(deps, { principal, caller, filter, after, signal: abort.signal })) {
            await send(ws, JSON.stringify(toJson(TailEventsResponseSchema, message)));
          }
        } catch (err) {
          if (abort.signal.aborted) return;
          const failure = failureOf(err);
          if (!(err instanceof AuditlogError)) deps.log.error({ err }, "tail over WebSocket failed");
          await send(ws, JSON.stringify({ error: failure })).catch(() => {});
          ws.close(closeCode(failure.code), failure.code);
        }
      })();
    });
  };
}
