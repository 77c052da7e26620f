import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Where a request came from, as the audit trail of reads records it. */
export interface CallerInfo {
  ip: string;
  userAgent: string;
  requestId: string;
}

/** The peer address, set per request by the HTTP layer (Connect does not expose the socket). */
export const peerAddressKey = createContextKey<string>("", { description: "peer address" });

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`. */
export const plainAddress = (address: string | undefined) => (address ?? "").replace(/^::ffff:(?=\d+\.)/, "");

export function callerFromHeaders(headers: { get(name: string): string | null }, ip: string): CallerInfo {
  return { ip, userAgent: headers.get("user-agent") ?? "", requestId: headers.get("x-request-id") ?? "" };
}

export const callerOf = (ctx: HandlerContext): CallerInfo => callerFromHeaders(ctx.requestHeader, ctx.values.get(peerAddressKey));
