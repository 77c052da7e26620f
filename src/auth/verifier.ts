import { createPublicKey, webcrypto, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import type { AuthConfig } from "../config.ts";
import { AuditlogError, unauthenticated } from "../errors.ts";
import { remoteKeySet } from "./jwks.ts";
import { isRole, ROLES, type Principal, type Role } from "./principal.ts";
import { rememberVerified } from "./verified-tokens.ts";

export type VerifyToken = (token: string) => Promise<Principal>;

/** Which JWS algorithms a PEM key may verify: fixed by its type, never by the token. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256", "RS384", "RS512"];
    case "ec":
      return ["ES256", "ES384", "ES512"];
    case "ed25519":
      return ["EdDSA"];
    default:
      throw new Error(`unsupported public key type ${key.asymmetricKeyType}; use RSA, EC or Ed25519`);
  }
}

function readPem(value: string): string {
  return value.includes("-----BEGIN") ? value : readFileSync(value, "utf8");
}

/** Verified tokens remembered (src/auth/verified-tokens.ts): 4 MB of them for tokens of 1 KB. */
const REMEMBERED_TOKENS = 4096;
/** How long a verified token is trusted without a new check, at most (then its key must still be in the JWKS jose holds). */
const REMEMBERED_MAX_AGE_MS = 60_000;

const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

/**
 * Builds the token verifier from config. Each key source accepts only its own
 * algorithms, so an HS256 token can never be checked against a public key
 * (algorithm confusion) and `alg: none` is never accepted.
 */
export function createVerifier(config: AuthConfig, secret: string | undefined): VerifyToken {
  // Imported once: given the secret's bytes, jose imports a key for every token.
  const hmacKey = secret
    ? webcrypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
    : undefined;
  const pemKey = config.publicKeyPem ? createPublicKey(readPem(config.publicKeyPem)) : undefined;
  const pemAlgorithms = pemKey ? algorithmsFor(pemKey) : [];
  const jwksMaxAgeMs = config.jwksMaxAgeSec * 1000;
  const jwks: JWTVerifyGetKey | undefined = config.jwksUrl ? remoteKeySet(new URL(config.jwksUrl), jwksMaxAgeMs) : undefined;
  const common = {
    issuer: config.issuer,
    audience: config.audience,
    clockTolerance: config.clockToleranceSec,
    requiredClaims: ["exp", "sub"],
  };

  async function verifyPayload(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthenticated("the bearer token is not a JWT (expected header.payload.signature)");
    }
    if (alg === "HS256" && hmacKey) {
      return (await jwtVerify(token, await hmacKey, { ...common, algorithms: ["HS256"] })).payload;
    }
    if (alg && pemKey && pemAlgorithms.includes(alg)) {
      return (await jwtVerify(token, pemKey, { ...common, algorithms: pemAlgorithms })).payload;
    }
    if (alg && jwks && ASYMMETRIC.includes(alg)) {
      return (await jwtVerify(token, jwks, { ...common, algorithms: ASYMMETRIC })).payload;
    }
    throw unauthenticated(`tokens signed with alg "${alg}" are not accepted by this server`);
  }

  return rememberVerified(
    async (token) => {
      let payload: JWTPayload;
      try {
        payload = await verifyPayload(token);
      } catch (err) {
        // jose fetches the key before it checks anything else: a token that is bad whatever the key says is refused as bad.
        if (err instanceof AuditlogError && err.kind === "unavailable") throw refusedWithoutKey(token, config) ?? err;
        throw unauthenticated(describeJoseError(err));
      }
      // jose has checked that `exp` is there and a number.
      return { principal: principalFrom(payload, config), expiresAtMs: payload.exp! * 1000 };
    },
    // A token is not remembered past the JWKS's own age: a key removed from the set is refused within that age.
    { maxTokens: REMEMBERED_TOKENS, maxAgeMs: jwks ? Math.min(REMEMBERED_MAX_AGE_MS, jwksMaxAgeMs) : REMEMBERED_MAX_AGE_MS },
  );
}

/**
 * While no key can be had, what the token's unverified claims already rule
 * out: expired, or meant for another issuer or audience. Refusing on claims
 * nobody has verified is safe; accepting on them never happens here.
 */
function refusedWithoutKey(token: string, config: AuthConfig): AuditlogError | undefined {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    return unauthenticated("the bearer token is malformed");
  }
  if (typeof claims.exp === "number" && claims.exp + config.clockToleranceSec < Date.now() / 1000) {
    return unauthenticated("the token has expired; mint a new one");
  }
  if (config.issuer !== undefined && claims.iss !== config.issuer) {
    return unauthenticated(`the token's "iss" claim is not acceptable (not the configured issuer); check iss, aud, nbf and sub`);
  }
  const audiences = typeof claims.aud === "string" ? [claims.aud] : (claims.aud ?? []);
  if (config.audience !== undefined && !audiences.includes(config.audience)) {
    return unauthenticated(`the token's "aud" claim is not acceptable (not the configured audience); check iss, aud, nbf and sub`);
  }
  return undefined;
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the token has expired; mint a new one";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return `the token's "${err.claim}" claim is not acceptable (${err.reason}); check iss, aud, nbf and sub`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return "the token's signature does not verify; it was signed with another key or altered";
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key in the JWKS matches the token's kid";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "the token's signing algorithm is not accepted";
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) {
    return "the bearer token is malformed";
  }
  if (err instanceof Error && err.name === "AuditlogError") return err.message;
  return "the bearer token could not be verified";
}

function principalFrom(payload: JWTPayload, config: AuthConfig): Principal {
  const tenantClaim = payload[config.tenantClaim];
  const tenant = typeof tenantClaim === "string" ? tenantClaim : "";
  const rawRoles = payload[config.rolesClaim];
  const names = Array.isArray(rawRoles)
    ? rawRoles.filter((r): r is string => typeof r === "string")
    : typeof rawRoles === "string"
      ? rawRoles.split(/[\s,]+/)
      : [];
  const roles = new Set<Role>(names.filter(isRole));
  if (roles.size === 0) {
    throw unauthenticated(`the token carries no known role in its "${config.rolesClaim}" claim (${ROLES.join(", ")})`);
  }
  if (tenant === "" && !roles.has("admin")) {
    throw unauthenticated(`the token has no "${config.tenantClaim}" claim; only admin tokens may omit it`);
  }
  return { subject: payload.sub ?? "", tenant, roles, validUntilMs: ((payload.exp ?? Infinity) + config.clockToleranceSec) * 1000 };
}
