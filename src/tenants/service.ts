import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CreateTenantResponseSchema,
  GetTenantResponseSchema,
  ListTenantsResponseSchema,
  RateLimitsSchema,
  RedactionRulesSchema,
  TenantSchema,
  UpdateTenantResponseSchema,
  type RedactionRules,
  type Tenant,
  type TenantService,
} from "../../gen/auditlog/v1/tenant_pb.js";
import { callerPermitted } from "../auth/context.ts";
import { invalidArgument, notFound } from "../errors.ts";
import { decodeOpaque } from "../query/page-token.ts";
import { timestampFromMicros } from "../time.ts";
import type { TenantChanges, TenantRegistry } from "./registry.ts";
import { NO_RATE_LIMITS, type TenantRecord } from "./tenant-store.ts";

const MAX_RETENTION_DAYS = 36500;
const MAX_DISPLAY_NAME_BYTES = 256;
const MAX_REDACTION_KEYS = 100;
const MAX_REDACTION_KEY_BYTES = 64;

const toTenant = (t: TenantRecord): Tenant =>
  create(TenantSchema, {
    tenantId: t.id,
    displayName: t.displayName,
    retentionDays: t.retentionDays,
    rateLimits: create(RateLimitsSchema, t.rateLimits),
    redaction: create(RedactionRulesSchema, t.redaction),
    createTime: timestampFromMicros(t.createTimeUs),
    updateTime: timestampFromMicros(t.updateTimeUs),
  });

function redactionOf(rules: RedactionRules | undefined): TenantRecord["redaction"] {
  const keys = rules?.keys ?? [];
  if (keys.length > MAX_REDACTION_KEYS) throw invalidArgument(`redaction.keys has ${keys.length} keys; the limit is ${MAX_REDACTION_KEYS}`);
  for (const key of keys) {
    // Keys are matched on their letters and digits alone (src/ingest/redact.ts): one without any would match every key.
    if (!/[A-Za-z0-9]/.test(key) || Buffer.byteLength(key) > MAX_REDACTION_KEY_BYTES) {
      throw invalidArgument(`redaction key ${JSON.stringify(key.slice(0, 80))} must have letters or digits and at most ${MAX_REDACTION_KEY_BYTES} bytes`);
    }
  }
  const out: TenantRecord["redaction"] = { keys: [...new Set(keys)] };
  if (rules?.cardNumbers !== undefined) out.cardNumbers = rules.cardNumbers;
  if (rules?.bearerTokens !== undefined) out.bearerTokens = rules.bearerTokens;
  if (rules?.emails !== undefined) out.emails = rules.emails;
  return out;
}

const RATE_FIELDS = ["ingest_events_per_second", "requests_per_second", "principal_ingest_events_per_second", "principal_requests_per_second"] as const;
const RATE_KEYS = {
  ingest_events_per_second: "ingestEventsPerSecond",
  requests_per_second: "requestsPerSecond",
  principal_ingest_events_per_second: "principalIngestEventsPerSecond",
  principal_requests_per_second: "principalRequestsPerSecond",
} as const;
const UPDATABLE = ["display_name", "retention_days", "rate_limits", ...RATE_FIELDS.map((f) => `rate_limits.${f}`), "redaction"];

/**
 * The changes a request asks for: the fields named by `paths`, or, with no
 * paths, every field given a non-default value (AIP-134).
 */
function changesOf(t: Tenant, paths: string[] | undefined, current?: TenantRecord): TenantChanges {
  const all = paths === undefined || paths.length === 0;
  const wants = (path: string, given: boolean) => (all ? given : paths.includes(path));
  for (const path of paths ?? []) {
    if (!UPDATABLE.includes(path)) throw invalidArgument(`update_mask path "${path}" is not one of ${UPDATABLE.join(", ")}`);
  }
  const changes: TenantChanges = {};
  if (wants("display_name", t.displayName !== "")) {
    if (Buffer.byteLength(t.displayName) > MAX_DISPLAY_NAME_BYTES) throw invalidArgument(`display_name is longer than ${MAX_DISPLAY_NAME_BYTES} bytes`);
    changes.displayName = t.displayName;
  }
  if (wants("retention_days", t.retentionDays !== 0)) {
    if (t.retentionDays > MAX_RETENTION_DAYS) throw invalidArgument(`retention_days must be within 0..${MAX_RETENTION_DAYS} (0: the server default)`);
    changes.retentionDays = t.retentionDays;
  }
  const rates = { ...(current?.rateLimits ?? NO_RATE_LIMITS) };
  let ratesChanged = false;
  for (const field of RATE_FIELDS) {
    const key = RATE_KEYS[field];
    const value = t.rateLimits?.[key] ?? 0;
    if (wants(`rate_limits.${field}`, value !== 0) || (!all && paths.includes("rate_limits"))) {
      rates[key] = value;
      ratesChanged = true;
    }
  }
  if (ratesChanged) changes.rateLimits = rates;
  if (wants("redaction", t.redaction !== undefined)) changes.redaction = redactionOf(t.redaction);
  return changes;
}

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;
const BAD_PAGE_TOKEN = "page_token is not valid: pass the next_page_token of the previous ListTenants response unchanged";

export function tenantService(registry: TenantRegistry): ServiceImpl<typeof TenantService> {
  return {
    async createTenant(req, ctx) {
      callerPermitted(ctx, "TenantService.CreateTenant");
      if (!req.tenant) throw invalidArgument("tenant is required");
      const tenant = await registry.create(req.tenant.tenantId, changesOf(req.tenant, undefined));
      return create(CreateTenantResponseSchema, { tenant: toTenant(tenant) });
    },

    async getTenant(req, ctx) {
      callerPermitted(ctx, "TenantService.GetTenant");
      const tenant = registry.get(req.tenantId);
      if (!tenant) throw notFound(`tenant "${req.tenantId}" does not exist`);
      return create(GetTenantResponseSchema, { tenant: toTenant(tenant) });
    },

    async listTenants(req, ctx) {
      callerPermitted(ctx, "TenantService.ListTenants");
      if (req.pageSize < 0 || req.pageSize > PAGE_MAX) throw invalidArgument(`page_size must be within 1..${PAGE_MAX} (0 means ${PAGE_DEFAULT})`);
      const size = req.pageSize || PAGE_DEFAULT;
      let after = "";
      if (req.pageToken) {
        const body = decodeOpaque(req.pageToken, BAD_PAGE_TOKEN);
        if (!Array.isArray(body) || body[0] !== "tenants" || typeof body[1] !== "string") throw invalidArgument(BAD_PAGE_TOKEN);
        after = body[1];
      }
      const rest = registry.list().filter((t) => t.id > after);
      const page = rest.slice(0, size);
      const more = rest.length > size;
      return create(ListTenantsResponseSchema, {
        tenants: page.map(toTenant),
        nextPageToken: more ? Buffer.from(JSON.stringify(["tenants", page[page.length - 1].id])).toString("base64url") : "",
      });
    },

    async updateTenant(req, ctx) {
      callerPermitted(ctx, "TenantService.UpdateTenant");
      if (!req.tenant?.tenantId) throw invalidArgument("tenant.tenant_id is required");
      const current = registry.get(req.tenant.tenantId);
      if (!current) throw notFound(`tenant "${req.tenant.tenantId}" does not exist`);
      const tenant = await registry.update(current.id, changesOf(req.tenant, req.updateMask?.paths ?? [], current));
      return create(UpdateTenantResponseSchema, { tenant: toTenant(tenant) });
    },
  };
}
