import { invalidArgument, permissionDenied } from "../errors.ts";
import type { Principal } from "./principal.ts";

/**
 * Which tenants a read may touch. This is the one place that turns a caller
 * and the tenant it asked for into the tenant predicate of every query: an
 * explicit tenant (`{ tenant }`) or, for admins only, every tenant (`{ all }`).
 */
export type TenantScope = { kind: "tenant"; tenant: string } | { kind: "all" };

export function readScope(principal: Principal, requestedTenant: string): TenantScope {
  const isAdmin = principal.roles.has("admin");
  if (requestedTenant === "") {
    if (principal.tenant !== "") return { kind: "tenant", tenant: principal.tenant };
    if (isAdmin) return { kind: "all" };
    throw invalidArgument("the token names no tenant; ask for a token with a tenant claim");
  }
  if (requestedTenant === principal.tenant || isAdmin) return { kind: "tenant", tenant: requestedTenant };
  throw permissionDenied(
    `tenant_id "${requestedTenant}" is not the token's tenant "${principal.tenant}"; only admins may read other tenants`,
  );
}

/** The tenant an event is written to, or why the caller may not write it. */
export function writeTenant(principal: Principal, requestedTenant: string): { tenant: string } | { denied: string } {
  if (requestedTenant === "" || requestedTenant === principal.tenant) {
    if (principal.tenant !== "") return { tenant: principal.tenant };
    if (requestedTenant === "") return { denied: "tenant_id is required: the admin token names no tenant" };
  }
  if (principal.roles.has("admin")) return { tenant: requestedTenant };
  return {
    denied: `tenant_id "${requestedTenant}" is not the token's tenant "${principal.tenant}"; leave it empty, or use an admin token`,
  };
}
