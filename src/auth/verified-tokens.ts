import type { Principal } from "./principal.ts";

/** A token's verified caller, and when the token expires (its `exp`). */
export interface Verified {
  principal: Principal;
  expiresAtMs: number;
}

export interface VerifiedTokensOptions {
  /** Tokens remembered at most; past it the oldest is forgotten. */
  maxTokens: number;
  /** How long a verification is trusted, however far off the token's `exp` is. */
  maxAgeMs: number;
  now?: () => number;
}

/**
 * Remembers the tokens `verify` accepted until they expire (at most
 * `maxAgeMs`), keyed by their whole text, so a client that sends the same
 * token with every call has its signature checked once: through the API,
 * the check (WebCrypto, on the thread pool) was about 0.9 ms of a 25 ms
 * search. Refusals are never remembered: a bad token is checked, and
 * refused, every time. A remembered token is accepted until its `exp`
 * without jose's clock tolerance (a token within the tolerance is checked
 * again each time), and for at most `maxAgeMs` after a key it was signed
 * with leaves the JWKS.
 */
export function rememberVerified(
  verify: (token: string) => Promise<Verified>,
  { maxTokens, maxAgeMs, now = Date.now }: VerifiedTokensOptions,
): (token: string) => Promise<Principal> {
  const remembered = new Map<string, { principal: Principal; untilMs: number }>();
  return async (token) => {
    const hit = remembered.get(token);
    if (hit && now() < hit.untilMs) return hit.principal;
    remembered.delete(token);
    const { principal, expiresAtMs } = await verify(token);
    const untilMs = Math.min(expiresAtMs, now() + maxAgeMs);
    if (untilMs > now()) {
      // Insertion order is age order: the first key is the oldest.
      if (remembered.size >= maxTokens) remembered.delete(remembered.keys().next().value!);
      remembered.set(token, { principal, untilMs });
    }
    return principal;
  };
}
