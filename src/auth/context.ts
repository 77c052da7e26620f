import type { HandlerContext } from "@connectrpc/connect";
import { unauthenticated } from "../errors.ts";
import { requirePermission, type Operation } from "./permissions.ts";
import { principalKey, type Principal } from "./principal.ts";

/** The caller set by the auth interceptor; every service method starts here. */
export function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw unauthenticated("missing token: send \"Authorization: Bearer <token>\"");
  return principal;
}

/** The caller, provided one of its roles permits `operation`. */
export function callerPermitted(ctx: HandlerContext, operation: Operation): Principal {
  const principal = principalOf(ctx);
  requirePermission(principal, operation);
  return principal;
}
