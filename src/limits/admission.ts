import type { Principal } from "../auth/principal.ts";
import type { VerifyToken } from "../auth/verifier.ts";
import type { RateLimitConfig } from "../config.ts";
import { notFound, resourceExhausted, unavailable } from "../errors.ts";
import type { TenantRegistry } from "../tenants/registry.ts";
import type { RateLimitValues } from "../tenants/tenant-store.ts";
import type { Draw, RateLimiter } from "./token-bucket.ts";

/**
 * What every request passes before it runs, on every surface (RPC, export
 * download, WebSocket tail): a valid token, a tenant that exists, and the
 * request rate of its tenant and of its caller. Ingest then also pays for
 * its events with `chargeEvents`.
 */
export interface Admission {
  admit(token: string): Promise<Principal>;
  /** Charges `count` events per destination tenant to them and to the caller; refuses them all or none. */
  chargeEvents(principal: Principal, countsByTenant: Map<string, number>): void;
}

export function createAdmission(deps: {
  verify: VerifyToken;
  registry: TenantRegistry;
  limiter: RateLimiter;
  limits: RateLimitConfig;
}): Admission {
  const limit = (tenant: string, key: keyof RateLimitValues) => deps.registry.get(tenant)?.rateLimits[key] || deps.limits.defaults[key];
  // A caller is a subject within its token's tenant: the same subject in another tenant is someone else.
  const callerKey = (p: Principal) => `${p.tenant}\u0000${p.subject}`;

  function draw(draws: Draw[], what: string): void {
    const waitMs = deps.limiter.take(draws);
    if (waitMs > 0) throw resourceExhausted(`${what}; retry in ${(waitMs / 1000).toFixed(1)} s`, waitMs);
  }

  return {
    async admit(token) {
      const principal = await deps.verify(token);
      const { tenant } = principal;
      // Before the store is up, "unknown tenant" would be a guess: say not ready, as everything else does.
      if (!deps.registry.loaded) throw unavailable("storage is not ready yet; retry shortly");
      if (tenant !== "" && !(await deps.registry.resolve(tenant))) {
        throw notFound(`tenant "${tenant}" does not exist; an admin creates it with TenantService.CreateTenant`);
      }
      const tenantRate = tenant === "" ? 0 : limit(tenant, "requestsPerSecond");
      const callerRate = limit(tenant, "principalRequestsPerSecond");
      draw(
        [
          { key: `requests/tenant/${tenant}`, perSecond: tenantRate, tokens: 1 },
          { key: `requests/caller/${callerKey(principal)}`, perSecond: callerRate, tokens: 1 },
        ],
        `the request rate limit is reached (tenant "${tenant}": ${tenantRate || "unlimited"}/s, this caller: ${callerRate || "unlimited"}/s)`,
      );
      return principal;
    },

    chargeEvents(principal, countsByTenant) {
      let total = 0;
      const draws: Draw[] = [];
      for (const [tenant, count] of countsByTenant) {
        total += count;
        draws.push({ key: `events/tenant/${tenant}`, perSecond: limit(tenant, "ingestEventsPerSecond"), tokens: count });
      }
      const callerRate = limit(principal.tenant, "principalIngestEventsPerSecond");
      draws.push({ key: `events/caller/${callerKey(principal)}`, perSecond: callerRate, tokens: total });
      const rates = draws.map((d) => `${d.perSecond || "unlimited"}/s`);
      draw(draws, `the ingest rate limit is reached (${total} events; limits per tenant and caller: ${rates.join(", ")}); none of these events is stored`);
    },
  };
}
