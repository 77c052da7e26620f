import { describe, expect, it } from "vitest";
import type { Principal, Role } from "../../src/auth/principal.ts";
import { inScope, readScope, writeTenant } from "../../src/auth/tenant-scope.ts";
import { AuditlogError } from "../../src/errors.ts";

const principal = (tenant: string, ...roles: Role[]): Principal => ({ subject: "sub-1", tenant, roles: new Set(roles) });

function readError(p: Principal, requested: string): AuditlogError {
  try {
    readScope(p, requested);
  } catch (err) {
    expect(err).toBeInstanceOf(AuditlogError);
    return err as AuditlogError;
  }
  throw new Error("expected readScope to refuse");
}

describe("readScope", () => {
  it.each(["auditor", "admin"] as const)("scopes a %s to its own tenant when none is requested", (role) => {
    expect(readScope(principal("acme", role), "")).toEqual({ kind: "tenant", tenant: "acme" });
  });

  it("lets an auditor name its own tenant", () => {
    expect(readScope(principal("acme", "auditor"), "acme")).toEqual({ kind: "tenant", tenant: "acme" });
  });

  it.each(["user", "writer"] as const)("narrows a %s (no tenant-wide reading role) to the events whose actor is its subject", (role) => {
    expect(readScope(principal("acme", role), "")).toEqual({ kind: "tenant", tenant: "acme", actorId: "sub-1" });
    expect(readScope(principal("acme", role), "acme")).toEqual({ kind: "tenant", tenant: "acme", actorId: "sub-1" });
  });

  it("reads the whole tenant for a token that is user and auditor: roles add up", () => {
    expect(readScope(principal("acme", "user", "auditor"), "")).toEqual({ kind: "tenant", tenant: "acme" });
  });

  it("refuses a user token without a subject instead of matching events without an actor", () => {
    const p: Principal = { subject: "", tenant: "acme", roles: new Set(["user"]) };
    expect(() => readScope(p, "")).toThrow(/a user token needs a sub claim/);
  });

  it.each(["auditor", "writer"] as const)("refuses a %s another tenant with permission_denied", (role) => {
    const err = readError(principal("acme", role), "globex");
    expect(err.kind).toBe("permission_denied");
    expect(err.message).toBe('tenant_id "globex" is not the token\'s tenant "acme"; only admins may read other tenants');
  });

  it("lets an admin with a tenant claim read another tenant", () => {
    expect(readScope(principal("acme", "admin"), "globex")).toEqual({ kind: "tenant", tenant: "globex" });
  });

  it("gives an admin without a tenant claim every tenant when none is requested", () => {
    expect(readScope(principal("", "admin"), "")).toEqual({ kind: "all" });
  });

  it("scopes an admin without a tenant claim to the tenant it names", () => {
    expect(readScope(principal("", "admin"), "initech")).toEqual({ kind: "tenant", tenant: "initech" });
  });

  it("honours admin among several roles", () => {
    expect(readScope(principal("acme", "auditor", "admin"), "globex")).toEqual({ kind: "tenant", tenant: "globex" });
  });

  it("refuses a non-admin token without a tenant as invalid_argument", () => {
    const err = readError(principal("", "auditor"), "");
    expect(err.kind).toBe("invalid_argument");
    expect(err.message).toContain("the token names no tenant");
  });

  it("refuses a non-admin token without a tenant that names one", () => {
    expect(readError(principal("", "auditor"), "acme").kind).toBe("permission_denied");
  });
});

describe("writeTenant", () => {
  it("writes to the token's tenant when none is requested", () => {
    expect(writeTenant(principal("acme", "writer"), "")).toEqual({ tenant: "acme" });
  });

  it("accepts the token's own tenant named explicitly", () => {
    expect(writeTenant(principal("acme", "writer"), "acme")).toEqual({ tenant: "acme" });
  });

  it.each(["writer", "auditor"] as const)("denies a %s another tenant", (role) => {
    expect(writeTenant(principal("acme", role), "globex")).toEqual({
      denied: 'tenant_id "globex" is not the token\'s tenant "acme"; leave it empty, or use an admin token',
    });
  });

  it("lets an admin with a tenant claim write to its own tenant by default", () => {
    expect(writeTenant(principal("acme", "admin"), "")).toEqual({ tenant: "acme" });
  });

  it("lets an admin with a tenant claim write into another tenant", () => {
    expect(writeTenant(principal("acme", "admin"), "globex")).toEqual({ tenant: "globex" });
  });

  it("lets an admin without a tenant claim write into the tenant it names", () => {
    expect(writeTenant(principal("", "admin"), "initech")).toEqual({ tenant: "initech" });
  });

  it("requires an admin without a tenant claim to name a tenant", () => {
    expect(writeTenant(principal("", "admin"), "")).toEqual({ denied: "tenant_id is required: the admin token names no tenant" });
  });

  it("never returns an empty tenant", () => {
    for (const p of [principal("", "writer"), principal("", "admin"), principal("", "auditor")]) {
      const result = writeTenant(p, "");
      expect("tenant" in result ? result.tenant : "denied").not.toBe("");
    }
  });
});

describe("inScope: the rows a read got back, checked before they leave", () => {
  const row = (tenant_id: string, actor_id = "u-1") => ({ tenant_id, actor_id, id: `${tenant_id}/${actor_id}` });

  it("passes the rows of the scope's tenant, and every row for a read of all tenants", () => {
    const rows = [row("acme"), row("acme", "u-2")];
    expect(inScope({ kind: "tenant", tenant: "acme" }, rows)).toBe(rows);
    expect(inScope({ kind: "all" }, [row("acme"), row("globex")])).toHaveLength(2);
  });

  it("fails the whole read when one row is another tenant's", () => {
    expect(() => inScope({ kind: "tenant", tenant: "acme" }, [row("acme"), row("globex")])).toThrow(
      'a read of tenant "acme" got back an event of tenant "globex"; nothing of it was answered',
    );
  });

  it("fails a user's read when one row is another actor's", () => {
    const scope = { kind: "tenant", tenant: "acme", actorId: "u-1" } as const;
    expect(inScope(scope, [row("acme", "u-1")])).toHaveLength(1);
    expect(() => inScope(scope, [row("acme", "u-1"), row("acme", "u-2")])).toThrow(/actor "u-1" got back one of another actor/);
  });
});
