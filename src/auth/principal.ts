import { createContextKey } from "@connectrpc/connect";
/** writer: ingests. user: reads its own events. auditor: reads its tenant. admin: everything, every tenant. */
export const ROLES = ["writer", "user", "auditor", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** The verified caller of one request, derived from its token alone. */
export interface Principal {
  subject: string;
  /** Empty only for an admin token that names no tenant. */
  tenant: string;
  roles: ReadonlySet<Role>;
  /**
   * When its token stops being accepted (`exp` plus the clock tolerance), if
   * it says: a call that outlives it (a live tail) ends then.
   */
  validUntilMs?: number;
}

/** Carries the caller from the auth interceptor to the service methods. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "auditlog principal" });

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
