import { createRemoteJWKSet, customFetch, errors as joseErrors, type JWTVerifyGetKey } from "jose";
import { AuditlogError } from "../errors.ts";

/** jose's pause between fetches for a kid it does not know (made-up kids cannot make us fetch on every call). */
const UNKNOWN_KID_COOLDOWN_MS = 30_000;
/**
 * After the set could not be fetched, calls that need a fetch are answered at
 * once for this long: jose stamps only successful fetches, so without it
 * every call during an outage would ask the identity provider again (and wait
 * up to jose's 5 s timeout when it does not answer).
 */
export const JWKS_RETRY_AFTER_MS = 5_000;

/** What jose's key getter throws because of the token, not the key set: passed on as they are. */
const TOKEN_ERRORS = [joseErrors.JWKSNoMatchingKey, joseErrors.JWKSMultipleMatchingKeys, joseErrors.JOSENotSupported];

/**
 * The keys of an identity provider's JWKS, fetched again once the set is
 * `maxAgeMs` old (so a key removed from it is refused after at most that
 * long), or sooner for a kid the set does not have. A set that cannot be
 * fetched or used is the identity provider's failure, not the caller's: it is
 * UNAVAILABLE with a retry-after, and the token is not called bad.
 */
export function remoteKeySet(url: URL, maxAgeMs: number): JWTVerifyGetKey {
  let failedAtMs = -Infinity;
  let failure = "";
  const backingOff = () => performance.now() - failedAtMs < JWKS_RETRY_AFTER_MS;
  const unavailableNow = (cause?: unknown) =>
    new AuditlogError("unavailable", `the identity provider's keys (AUDITLOG_JWT_JWKS_URL) could not be fetched or used (${failure}); try again`, {
      cause,
      retryAfterMs: JWKS_RETRY_AFTER_MS,
    });
  const getKey = createRemoteJWKSet(url, {
    cacheMaxAge: maxAgeMs,
    cooldownDuration: Math.min(UNKNOWN_KID_COOLDOWN_MS, maxAgeMs),
    [customFetch]: (input: string, init: RequestInit) => (backingOff() ? Promise.reject(new BackingOff()) : fetch(input, init)),
  });
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (err) {
      if (TOKEN_ERRORS.some((type) => err instanceof type)) throw err;
      if (err instanceof BackingOff) throw unavailableNow();
      failedAtMs = performance.now();
      failure = err instanceof Error ? err.message : String(err);
      throw unavailableNow(err);
    }
  };
}

class BackingOff extends Error {}
