import { unauthenticated } from "../errors.ts";

const MISSING = 'missing token: send "Authorization: Bearer <token>" (mint one with `npx auditlog token`)';

/** The token of an `Authorization: Bearer <token>` header, or why there is none. */
export function bearerToken(header: string | null | undefined): string {
  if (!header) throw unauthenticated(MISSING);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthenticated('the Authorization header must be "Bearer <token>"');
  return match[1];
}
