import type { ClickHouseClient } from "@clickhouse/client";
import { dateTime64 } from "../store/event-row.ts";

/** Per second; 0: the server default. */
export interface RateLimitValues {
  ingestEventsPerSecond: number;
  requestsPerSecond: number;
  principalIngestEventsPerSecond: number;
  principalRequestsPerSecond: number;
}

export const NO_RATE_LIMITS: Readonly<RateLimitValues> = {
  ingestEventsPerSecond: 0,
  requestsPerSecond: 0,
  principalIngestEventsPerSecond: 0,
  principalRequestsPerSecond: 0,
};

/** A tenant and its policies; zeros mean "the server default". */
export interface TenantRecord {
  id: string;
  displayName: string;
  retentionDays: number;
  rateLimits: RateLimitValues;
  redaction: { keys: string[]; cardNumbers?: boolean; bearerTokens?: boolean; emails?: boolean };
  createTimeUs: number;
  updateTimeUs: number;
}

interface TenantRow {
  tenant_id: string;
  display_name: string;
  retention_days: number;
  ingest_events_per_second: number;
  requests_per_second: number;
  principal_ingest_events_per_second: number;
  principal_requests_per_second: number;
  redaction: string;
  create_us: string;
  update_us: string;
}

/**
 * Every version of a tenant is a row; the newest (by update_time) wins, in
 * reads (`FINAL`) and in merges (ReplacingMergeTree).
 */
export async function readTenants(client: ClickHouseClient): Promise<TenantRecord[]> {
  const result = await client.query({
    query: `SELECT tenant_id, display_name, retention_days, ingest_events_per_second, requests_per_second,
        principal_ingest_events_per_second, principal_requests_per_second, redaction, toUnixTimestamp64Micro(create_time) AS create_us,
        toUnixTimestamp64Micro(update_time) AS update_us
      FROM tenants FINAL ORDER BY tenant_id`,
    format: "JSONEachRow",
  });
  return (await result.json<TenantRow>()).map((r) => ({
    id: r.tenant_id,
    displayName: r.display_name,
    retentionDays: Number(r.retention_days),
    rateLimits: {
      ingestEventsPerSecond: Number(r.ingest_events_per_second),
      requestsPerSecond: Number(r.requests_per_second),
      principalIngestEventsPerSecond: Number(r.principal_ingest_events_per_second),
      principalRequestsPerSecond: Number(r.principal_requests_per_second),
    },
    redaction: r.redaction ? JSON.parse(r.redaction) : { keys: [] },
    createTimeUs: Number(r.create_us),
    updateTimeUs: Number(r.update_us),
  }));
}

export async function writeTenant(client: ClickHouseClient, t: TenantRecord): Promise<void> {
  await client.insert({
    table: "tenants",
    columns: [
      "tenant_id", "display_name", "retention_days", "ingest_events_per_second", "requests_per_second",
      "principal_ingest_events_per_second", "principal_requests_per_second", "redaction", "create_time", "update_time",
    ],
    values: [[
      t.id, t.displayName, t.retentionDays, t.rateLimits.ingestEventsPerSecond, t.rateLimits.requestsPerSecond,
      t.rateLimits.principalIngestEventsPerSecond, t.rateLimits.principalRequestsPerSecond, JSON.stringify(t.redaction), dateTime64(t.createTimeUs), dateTime64(t.updateTimeUs),
    ]],
    format: "JSONCompactEachRow",
  });
}
