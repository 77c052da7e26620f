import { createContextKey } from "@connectrpc/connect";
import { permissionDenied } from "../errors.ts";

export const ROLES = ["writer", "auditor", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** The verified caller of one request, derived from its token alone. */
export interface Principal {
  subject: string;
  /** Empty only for an admin token that names no tenant. */
  tenant: string;
  roles: ReadonlySet<Role>;
}

/** Carries the caller from the auth interceptor to the service methods. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "auditlog principal" });

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function requireAnyRole(principal: Principal, allowed: readonly Role[], what: string): void {
  if (allowed.some((role) => principal.roles.has(role))) return;
  const has = [...principal.roles].join(", ") || "none";
  throw permissionDenied(`${what} requires the role ${allowed.join(" or ")}; the token has: ${has}`);
}
