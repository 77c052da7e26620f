import { SignJWT } from "jose";
import type { Role } from "./principal.ts";

export interface TokenRequest {
  tenant: string;
  roles: Role[];
  subject: string;
  ttlSeconds: number;
  issuer?: string;
  audience?: string;
}

/** Mints an HS256 token with the claims the verifier expects. */
export async function mintToken(secret: string, req: TokenRequest, claims: { tenant: string; roles: string }) {
  const jwt = new SignJWT({ [claims.tenant]: req.tenant || undefined, [claims.roles]: req.roles })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(req.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + req.ttlSeconds);
  if (req.issuer) jwt.setIssuer(req.issuer);
  if (req.audience) jwt.setAudience(req.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** Parses `90s`, `15m`, `1h`, `7d` into seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new Error(`invalid duration ${JSON.stringify(text)}; use e.g. 90s, 15m, 1h or 7d`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}
