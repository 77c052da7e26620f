import type { ClickHouseClient } from "@clickhouse/client";
import type { EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import type { TenantScope } from "../auth/tenant-scope.ts";
import { invalidArgument } from "../errors.ts";
import type { QueryStreamer } from "../store/query-stream.ts";
import { EXPORT_MEDIA, EXPORT_ORDER, exportSelect, exportSettings, MAX_CSV_ATTRIBUTE_COLUMNS, type ExportFormatName } from "./export-sql.ts";
import { filterConditions, type Conditions } from "./filter-sql.ts";

export interface ExportDeps {
  client: ClickHouseClient;
  stream: QueryStreamer;
  /** The snapshot bound: see Committer.settledUs. */
  settledUs: () => number;
}

export interface ExportRequest {
  scope: TenantScope;
  filter: EventFilter | undefined;
  format: ExportFormatName;
  /** CSV only: quote text cells a spreadsheet would take for formulas (see exportSelect). */
  formulaSafe?: boolean;
  signal: AbortSignal;
}

export interface OpenedExport {
  contentType: string;
  fileName: string;
  /** The file's bytes; break out of the loop to cancel the query. */
  chunks: AsyncGenerator<Uint8Array>;
  /** Rows and bytes passed on so far; rows undefined when the store does not report them. */
  progress: { rows: number | undefined; bytes: number };
  /** Stops the query, whether or not `chunks` was ever iterated. Idempotent. */
  close(): Promise<void>;
}

/** The distinct attribute keys of the exported events: the CSV's attribute columns. */
async function attributeKeys(client: ClickHouseClient, where: Conditions): Promise<string[]> {
  const { sql, params } = where.build();
  const result = await client.query({
    query: `SELECT DISTINCT arrayJoin(mapKeys(attributes)) AS key FROM events WHERE ${sql} ORDER BY key LIMIT ${MAX_CSV_ATTRIBUTE_COLUMNS + 1}`,
    query_params: params,
    format: "JSONEachRow",
  });
  return (await result.json<{ key: string }>()).map((row) => row.key);
}

const fileStamp = (us: number) => new Date(us / 1000).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");

/**
 * Starts an export and waits for its first bytes, so a query that fails does
 * so before a response is committed to success. The snapshot (events
 * committed before the call) keeps a CSV's header and rows consistent, and a
 * long export from growing while it runs.
 */
export async function openExport(deps: ExportDeps, req: ExportRequest): Promise<OpenedExport> {
  if (req.formulaSafe && req.format !== "csv") {
    throw invalidArgument(`csv_formula_safe applies to CSV exports only, not ${req.format}; drop it or ask for format csv`);
  }
  const where = filterConditions(req.scope, req.filter);
  const snapshotUs = deps.settledUs();
  where.add(`received_at <= fromUnixTimestamp64Micro(${where.param("Int64", snapshotUs)}, 'UTC')`);
  const keys = req.format === "csv" ? await attributeKeys(deps.client, where) : [];
  const select = exportSelect(req.format, where, keys, { formulaSafe: req.formulaSafe ?? false });
  const { sql, params } = where.build();
  const media = EXPORT_MEDIA[req.format];
  const source = deps.stream({
    sql: `SELECT ${select.columns} FROM events WHERE ${sql} ${EXPORT_ORDER}`,
    params,
    format: media.clickhouseFormat,
    settings: exportSettings(req.format),
    signal: req.signal,
  });
  const first = await source.next();
  const progress: OpenedExport["progress"] = { rows: 0, bytes: 0 };

  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      if (select.preamble) {
        const preamble = Buffer.from(select.preamble);
        progress.bytes += preamble.byteLength;
        yield preamble;
      }
      let next = first;
      while (!next.done) {
        const { bytes, rows } = next.value;
        progress.rows = rows === undefined || progress.rows === undefined ? undefined : progress.rows + rows;
        progress.bytes += bytes.byteLength;
        yield bytes;
        next = await source.next();
      }
    } finally {
      // Stops the query when the consumer stops early.
      await source.return(undefined);
    }
  }

  const scopeName = req.scope.kind === "tenant" ? req.scope.tenant.replace(/[^A-Za-z0-9._-]/g, "_") : "all-tenants";
  return {
    contentType: media.contentType,
    fileName: `auditlog-${scopeName}-${fileStamp(snapshotUs)}.${media.extension}`,
    chunks: chunks(),
    progress,
    close: async () => {
      await source.return(undefined);
    },
  };
}
