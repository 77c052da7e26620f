import { invalidArgument, permissionDenied } from "../errors.ts";
import type { Principal } from "./principal.ts";

/**
 * Which events a read may touch. This is the one place that turns a caller
 * and the tenant it asked for into the scope predicate of every query: one
 * tenant (`{ tenant }`), narrowed to the events whose actor is the caller for
 * a token whose only reading role is `user` (`actorId`), or, for admins
 * only, every tenant (`{ all }`).
 */
export type TenantScope = { kind: "tenant"; tenant: string; actorId?: string } | { kind: "all" };

export function readScope(principal: Principal, requestedTenant: string): TenantScope {
  const isAdmin = principal.roles.has("admin");
  // Roles add up: a token that is also an auditor reads its whole tenant.
  const ownEventsOnly = !isAdmin && !principal.roles.has("auditor");
  if (requestedTenant === "") {
    if (principal.tenant !== "") return tenantScope(principal.tenant, ownEventsOnly ? principal.subject : undefined);
    if (isAdmin) return { kind: "all" };
    throw invalidArgument("the token names no tenant; ask for a token with a tenant claim");
  }
  if (requestedTenant === principal.tenant || isAdmin) {
    return tenantScope(requestedTenant, ownEventsOnly ? principal.subject : undefined);
  }
  throw permissionDenied(
    `tenant_id "${requestedTenant}" is not the token's tenant "${principal.tenant}"; only admins may read other tenants`,
  );
}

function tenantScope(tenant: string, actorId: string | undefined): TenantScope {
  // A token without a subject must not read the events that have none.
  if (actorId === "") throw invalidArgument("a user token needs a sub claim: it reads the events whose actor.id is its subject");
  return actorId === undefined ? { kind: "tenant", tenant } : { kind: "tenant", tenant, actorId };
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

/**
 * The rows a read got back, checked against its scope before any of them
 * leaves. The scope predicate is in every query's SQL (above); this is the
 * second lock: a parameter bound to another query's value inside the engine
 * (chdb-node queues its parameterized calls for fear of it; see
 * store/streamed-queries.ts) or a bug in a filter would otherwise show a
 * caller another tenant's events. Such a read fails whole, as an internal
 * error.
 */
export function inScope<Row extends { tenant_id: string; actor_id: string }>(scope: TenantScope, rows: Row[]): Row[] {
  if (scope.kind === "all") return rows;
  for (const row of rows) {
    if (row.tenant_id !== scope.tenant) {
      throw new Error(`a read of tenant "${scope.tenant}" got back an event of tenant "${row.tenant_id}"; nothing of it was answered`);
    }
    if (scope.actorId !== undefined && row.actor_id !== scope.actorId) {
      throw new Error(`a read of the events of actor "${scope.actorId}" got back one of another actor; nothing of it was answered`);
    }
  }
  return rows;
}
