import type { Interceptor } from "@connectrpc/connect";
import { bearerToken } from "./bearer.ts";
import { principalKey } from "./principal.ts";
import type { VerifyToken } from "./verifier.ts";

/** Every RPC requires a bearer token; the verified caller travels in the context. */
export function authInterceptor(verify: VerifyToken): Interceptor {
  return (next) => async (req) => {
    req.contextValues.set(principalKey, await verify(bearerToken(req.header.get("authorization"))));
    return next(req);
  };
}
