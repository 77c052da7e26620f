import { create } from "@bufbuild/protobuf";
import type { ClickHouseClient } from "@clickhouse/client";
import {
  EventTypeSchema,
  GetTimelineResponseSchema,
  ListEventTypesResponseSchema,
  type GetTimelineRequest,
  type GetTimelineResponse,
  type ListEventTypesResponse,
} from "../../gen/auditlog/v1/query_pb.js";
import { inScope, type TenantScope } from "../auth/tenant-scope.ts";
import { invalidArgument } from "../errors.ts";
import { fromSelectedRow, SELECT_COLUMNS, type SelectedRow } from "../store/event-row.ts";
import { timestampFromMicros } from "../time.ts";
import { checkedValue, filterConditions } from "./filter-sql.ts";

const TIMELINE_MAX = 1000;

/** The event types of the scope, from the `event_types` rollup (one row per tenant and type, however many events). */
export async function listEventTypes(client: ClickHouseClient, scope: TenantScope): Promise<ListEventTypesResponse> {
  const { sql, params } = filterConditions(scope, undefined).build();
  const result = await client.query({
    query: `SELECT toString(type) AS name, sum(events) AS n, toUnixTimestamp64Micro(min(first_seen)) AS first_us,
        toUnixTimestamp64Micro(max(last_seen)) AS last_us, arraySort(groupUniqArrayArray(attribute_keys)) AS keys
      FROM event_types WHERE ${sql} GROUP BY type ORDER BY name`,
    query_params: params,
    format: "JSONEachRow",
  });
  const rows = await result.json<{ name: string; n: string; first_us: string; last_us: string; keys: string[] }>();
  return create(ListEventTypesResponseSchema, {
    types: rows.map((r) =>
      create(EventTypeSchema, {
        type: r.name,
        count: BigInt(r.n),
        firstSeen: timestampFromMicros(Number(r.first_us)),
        lastSeen: timestampFromMicros(Number(r.last_us)),
        attributeKeys: r.keys,
      }),
    ),
  });
}

/** Every event of one request or one session, oldest first: correlation across services. */
export async function getTimeline(client: ClickHouseClient, scope: TenantScope, req: GetTimelineRequest): Promise<GetTimelineResponse> {
  if (Boolean(req.requestId) === Boolean(req.sessionId)) throw invalidArgument("give exactly one of request_id and session_id");
  const where = filterConditions(scope, undefined);
  if (req.requestId) where.add(`request_id = ${where.param("String", checkedValue("request_id", req.requestId))}`);
  else where.add(`actor_session_id = ${where.param("String", checkedValue("session_id", req.sessionId))}`);
  const { sql, params } = where.build();
  const result = await client.query({
    query: `SELECT ${SELECT_COLUMNS} FROM events WHERE ${sql} ORDER BY time, id LIMIT ${TIMELINE_MAX + 1}`,
    query_params: params,
    format: "JSONEachRow",
  });
  const rows = inScope(scope, await result.json<SelectedRow>());
  return create(GetTimelineResponseSchema, {
    events: rows.slice(0, TIMELINE_MAX).map(fromSelectedRow),
    truncated: rows.length > TIMELINE_MAX,
  });
}
