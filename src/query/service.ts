import { create, toJson } from "@bufbuild/protobuf";
import type { ClickHouseClient } from "@clickhouse/client";
import type { ServiceImpl } from "@connectrpc/connect";
import { EventFilterSchema } from "../../gen/auditlog/v1/event_pb.js";
import { GetEventResponseSchema, QueryService, SearchEventsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { callerWithRole } from "../auth/context.ts";
import { readScope } from "../auth/tenant-scope.ts";
import type { QueryConfig } from "../config.ts";
import { invalidArgument, notFound } from "../errors.ts";
import { fromSelectedRow, SELECT_COLUMNS, type SelectedRow } from "../store/event-row.ts";
import { nowMicros } from "../time.ts";
import { filterConditions } from "./filter-sql.ts";
import { canonicalHash, decodePageToken, encodePageToken } from "./page-token.ts";

export interface QueryDeps {
  client: ClickHouseClient;
  config: QueryConfig;
}

const READERS = ["auditor", "admin"] as const;

export function queryService(deps: QueryDeps): ServiceImpl<typeof QueryService> {
  return {
    async searchEvents(req, ctx) {
      const principal = callerWithRole(ctx, READERS, "SearchEvents");
      const { config } = deps;
      if (req.pageSize < 0 || req.pageSize > config.maxPageSize) {
        throw invalidArgument(`page_size must be within 1..${config.maxPageSize} (0 means ${config.defaultPageSize})`);
      }
      const pageSize = req.pageSize || config.defaultPageSize;
      const scope = readScope(principal, req.filter?.tenantId ?? "");
      const where = filterConditions(scope, req.filter);
      const filterHash = canonicalHash([scope, req.filter ? toJson(EventFilterSchema, req.filter) : null]);
      const cursor = req.pageToken ? decodePageToken(req.pageToken, filterHash) : undefined;
      // The wall clock, not this process's last commit: with several instances
      // on one ClickHouse, every event acknowledged anywhere before the first
      // page is in the snapshot. An event stamped earlier but committed after
      // the first page may show up on a later page (once); nothing repeats.
      const snapshotUs = cursor?.snapshotUs ?? nowMicros();

      where.add(`received_at <= fromUnixTimestamp64Micro(${where.param("Int64", snapshotUs)}, 'UTC')`);
      if (cursor) {
        const t = `fromUnixTimestamp64Micro(${where.param("Int64", cursor.timeUs)}, 'UTC')`;
        // The plain `time <=` lets the primary key skip what the tuple compare cannot.
        where.add(`time <= ${t}`);
        where.add(`(time, id, tenant_id) < (${t}, ${where.param("String", cursor.id)}, ${where.param("String", cursor.tenantId)})`);
      }
      const limit = where.param("UInt32", pageSize + 1);
      const { sql, params } = where.build();
      const result = await deps.client.query({
        query: `SELECT ${SELECT_COLUMNS} FROM events WHERE ${sql} ORDER BY time DESC, id DESC, tenant_id DESC LIMIT ${limit}`,
        query_params: params,
        format: "JSONEachRow",
      });
      const rows = await result.json<SelectedRow>();
      const more = rows.length > pageSize;
      const page = more ? rows.slice(0, pageSize) : rows;
      const last = page[page.length - 1];
      return create(SearchEventsResponseSchema, {
        events: page.map(fromSelectedRow),
        nextPageToken: more
          ? encodePageToken({ snapshotUs, timeUs: Number(last.time_us), id: last.id, tenantId: last.tenant_id, filterHash })
          : "",
      });
    },

    async getEvent(req, ctx) {
      const principal = callerWithRole(ctx, READERS, "GetEvent");
      if (!req.id) throw invalidArgument("id is required");
      const scope = readScope(principal, req.tenantId);
      const where = filterConditions(scope, undefined);
      where.add(`id = ${where.param("String", req.id)}`);
      const { sql, params } = where.build();
      const result = await deps.client.query({
        query: `SELECT ${SELECT_COLUMNS} FROM events WHERE ${sql} LIMIT 1`,
        query_params: params,
        format: "JSONEachRow",
      });
      const [row] = await result.json<SelectedRow>();
      if (!row) {
        const where = scope.kind === "tenant" ? ` in tenant "${scope.tenant}"` : "";
        throw notFound(`no event with id "${req.id}"${where}`);
      }
      return create(GetEventResponseSchema, { event: fromSelectedRow(row) });
    },
  };
}
