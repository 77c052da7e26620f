import type { ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";

export interface StreamedQuery {
  /** SELECT text with `{name:Type}` placeholders; no FORMAT or SETTINGS clause. */
  sql: string;
  params: Record<string, unknown>;
  /** A ClickHouse output format, e.g. TSVRaw, CSV, Parquet. */
  format: string;
  /** Constant settings chosen by our code (never user input). */
  settings: Record<string, string | number>;
  /** Aborting stops the query in the engine, not just the reading. */
  signal: AbortSignal;
}

export interface StreamedChunk {
  bytes: Uint8Array;
  /** Rows in this chunk, when the engine reports it (chDB does; the HTTP interface does not). */
  rows: number | undefined;
}

/**
 * Runs a query and yields its output bytes as the engine produces them, so a
 * result of any size passes through with flat memory. The next chunk is only
 * fetched once the consumer asked for it: a slow reader slows the query.
 */
export type QueryStreamer = (query: StreamedQuery) => AsyncGenerator<StreamedChunk>;

const settingsClause = (settings: Record<string, string | number>) => {
  const entries = Object.entries(settings);
  return entries.length ? ` SETTINGS ${entries.map(([k, v]) => `${k} = ${typeof v === "number" ? v : `'${v}'`}`).join(", ")}` : "";
};

/**
 * `@clickhouse/client`'s chDB connection materializes whole results, so the
 * embedded engine streams through its own session API instead: one short-lived
 * session per stream (same-path sessions share the engine and run in
 * parallel; each session allows one open stream).
 */
function chdbStreamer(path: string): QueryStreamer {
  return async function* ({ sql, params, format, settings, signal }) {
    const { Session } = await import("chdb");
    const session = new Session(path);
    try {
      const stream = session.queryStreamBind(`${sql}${settingsClause(settings)}`, params, { format, signal });
      for await (const chunk of stream) {
        const bytes = chunk.raw();
        if (bytes.byteLength > 0) yield { bytes, rows: chunk.numRows };
      }
    } finally {
      session.close();
    }
  };
}

function serverStreamer(client: ClickHouseClient): QueryStreamer {
  return async function* ({ sql, params, format, settings, signal }) {
    const { stream } = await client.exec({
      query: `${sql}${settingsClause(settings)} FORMAT ${format}`,
      query_params: params,
      abort_signal: signal,
      // Without it, ClickHouse keeps computing after the client went away.
      clickhouse_settings: { cancel_http_readonly_queries_on_client_close: 1 },
    });
    try {
      for await (const chunk of stream) yield { bytes: chunk as Uint8Array, rows: undefined };
    } finally {
      stream.destroy();
    }
  };
}

export function createQueryStreamer(config: StoreConfig, client: ClickHouseClient): QueryStreamer {
  return config.kind === "chdb" ? chdbStreamer(config.path) : serverStreamer(client);
}
