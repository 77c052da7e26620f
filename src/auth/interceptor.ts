import type { Interceptor } from "@connectrpc/connect";
import { unauthenticated } from "../errors.ts";
import { principalKey } from "./principal.ts";
import type { VerifyToken } from "./verifier.ts";

/** Every RPC requires a bearer token; the verified caller travels in the context. */
export function authInterceptor(verify: VerifyToken): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization");
    if (!header) {
      throw unauthenticated('missing token: send "Authorization: Bearer <token>" (mint one with `npx auditlog token`)');
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthenticated('the Authorization header must be "Bearer <token>"');
    req.contextValues.set(principalKey, await verify(match[1]));
    return next(req);
  };
}
