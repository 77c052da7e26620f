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
  /** The wall clock, which `exp` is on. */
  now?: () => number;
  /** A clock that never steps back, which `maxAgeMs` is counted on. */
  monotonicNow?: () => number;
}

/**
 * Remembers the tokens `verify` accepted until they expire (at most
 * `maxAgeMs`), keyed by their whole text, so a client that sends the same
 * token with every call has its signature checked once: through the API,
 * the check (WebCrypto, on the thread pool) was about 0.9 ms of a 25–30 ms
 * search. Refusals are never remembered: a bad token is checked, and
 * refused, every time. A remembered token is accepted until its `exp`
 * without jose's clock tolerance (a token within the tolerance is checked
 * again each time), and for at most `maxAgeMs` after its check, counted on
 * a clock that does not step back with the wall clock.
 */
export function rememberVerified(
  verify: (token: string) => Promise<Verified>,
  { maxTokens, maxAgeMs, now = () => Date.now(), monotonicNow = () => performance.now() }: VerifiedTokensOptions,
): (token: string) => Promise<Principal> {
  const remembered = new Map<string, { principal: Principal; expiresAtMs: number; trustedUntil: number }>();
  return async (token) => {
    const hit = remembered.get(token);
    if (hit && now() < hit.expiresAtMs && monotonicNow() < hit.trustedUntil) return hit.principal;
    remembered.delete(token);
    const { principal, expiresAtMs } = await verify(token);
    if (now() < expiresAtMs) {
      // Insertion order is age order: the first key is the oldest. (Two calls
      // with one token may both have checked it: the second replaces the first.)
      if (!remembered.has(token) && remembered.size >= maxTokens) remembered.delete(remembered.keys().next().value!);
      remembered.set(token, { principal, expiresAtMs, trustedUntil: monotonicNow() + maxAgeMs });
    }
    return principal;
  };
}
