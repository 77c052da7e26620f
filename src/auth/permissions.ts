import { permissionDenied } from "../errors.ts";
import type { Principal, Role } from "./principal.ts";

/**
 * Who may call what: the permission matrix, in one table. A token's
 * permissions are the union of its roles'. What a permitted read then sees is
 * decided by `readScope` (src/auth/tenant-scope.ts): a `user` only its own
 * events, an auditor its tenant, an admin any tenant. README's matrix is
 * checked against this table by a test.
 */
export const PERMISSIONS = {
  "IngestService.Append": ["writer", "admin"],
  "IngestService.Ingest": ["writer", "admin"],
  "QueryService.SearchEvents": ["user", "auditor", "admin"],
  "QueryService.GetEvent": ["user", "auditor", "admin"],
  "QueryService.GetTimeline": ["user", "auditor", "admin"],
  "QueryService.GetStats": ["user", "auditor", "admin"],
  "QueryService.ExportEvents": ["user", "auditor", "admin"],
  "QueryService.TailEvents": ["user", "auditor", "admin"],
  // The catalog and the chains describe the whole tenant, not one actor's events.
  "QueryService.ListEventTypes": ["auditor", "admin"],
  "IntegrityService.VerifyChain": ["auditor", "admin"],
  "IntegrityService.GetCheckpoint": ["auditor", "admin"],
  "IntegrityService.GetPublicKey": ["writer", "user", "auditor", "admin"],
  "TenantService.CreateTenant": ["admin"],
  "TenantService.GetTenant": ["admin"],
  "TenantService.ListTenants": ["admin"],
  "TenantService.UpdateTenant": ["admin"],
} as const satisfies Record<string, readonly Role[]>;

export type Operation = keyof typeof PERMISSIONS;

/** The plain HTTP routes share their RPC's permission. */
export const ROUTE_OPERATIONS = {
  "GET /v1/export": "QueryService.ExportEvents",
  "GET /v1/tail (WebSocket)": "QueryService.TailEvents",
} as const satisfies Record<string, Operation>;

export function requirePermission(principal: Principal, operation: Operation): void {
  const allowed: readonly Role[] = PERMISSIONS[operation];
  if (allowed.some((role) => principal.roles.has(role))) return;
  const has = [...principal.roles].join(", ") || "none";
  const method = operation.split(".")[1];
  throw permissionDenied(`${method} requires the role ${allowed.join(" or ")}; the token has: ${has}`);
}
