import type { HandlerContext } from "@connectrpc/connect";
import { unauthenticated } from "../errors.ts";
import { principalKey, requireAnyRole, type Principal, type Role } from "./principal.ts";

/** The caller set by the auth interceptor; every service method starts here. */
export function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw unauthenticated("missing token: send \"Authorization: Bearer <token>\"");
  return principal;
}

/** The caller, provided it holds one of `roles`; `what` names the RPC in the error. */
export function callerWithRole(ctx: HandlerContext, roles: readonly Role[], what: string): Principal {
  const principal = principalOf(ctx);
  requireAnyRole(principal, roles, what);
  return principal;
}
