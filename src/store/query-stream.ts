import { randomUUID } from "node:crypto";
import { createReadStream, mkdirSync, rmSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";
import { inParamQueue, type ParamQueue } from "./streamed-queries.ts";

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
 * Formats that are one document rather than a sequence of rows: chDB's
 * streaming API formats each block on its own, which for these yields one
 * complete file per block, not one file.
 */
const WHOLE_FILE_FORMATS = new Set(["Parquet"]);
const FILE_READ_CHUNK = 1024 * 1024;

/**
 * `@clickhouse/client`'s chDB connection materializes whole results, so the
 * embedded engine streams through its own session API instead: one short-lived
 * session per stream (same-path sessions share the engine and run in
 * parallel; each session allows one open stream).
 *
 * Whole-file formats are written by the engine into a file under `spoolDir`
 * (its memory stays bounded by one row group), then streamed from disk and
 * deleted. Their query cannot be interrupted once started: a client that
 * leaves meanwhile only stops the transfer.
 */
function chdbStreamer(path: string, spoolDir: string, paramQueue: ParamQueue): QueryStreamer {
  // Files of exports cut short by a crash.
  rmSync(spoolDir, { recursive: true, force: true });
  mkdirSync(spoolDir, { recursive: true });

  return async function* ({ sql, params, format, settings, signal }) {
    const { Session } = await import("chdb");
    const session = new Session(path);
    if (WHOLE_FILE_FORMATS.has(format)) {
      const file = join(spoolDir, `${randomUUID()}.${format.toLowerCase()}`);
      try {
        // Counted in chdb-node's queue of parameterized calls, so the service's SELECTs stream past it meanwhile.
        await inParamQueue(paramQueue, () =>
          session.queryBindAsync(`INSERT INTO FUNCTION file({spool_file:String}, '${format}') ${sql}${settingsClause(settings)}`, { ...params, spool_file: file }),
        );
        const counted = await inParamQueue(paramQueue, () => session.queryBindAsync("SELECT count() FROM file({spool_file:String})", { spool_file: file }));
        const rows = Number(counted.text());
        signal.throwIfAborted();
        let first = true;
        for await (const bytes of createReadStream(file, { highWaterMark: FILE_READ_CHUNK, signal })) {
          // The row count rides on the first chunk: the file is complete before it is sent.
          yield { bytes: bytes as Buffer, rows: first ? rows : 0 };
          first = false;
        }
      } finally {
        session.close();
        await unlink(file).catch(() => {});
      }
      return;
    }
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

/** `paramQueue`: the process's count of calls in chdb-node's parameterized queue (StoreClients.paramQueue). */
export function createQueryStreamer(config: StoreConfig, client: ClickHouseClient, paramQueue: ParamQueue): QueryStreamer {
  return config.kind === "chdb" ? chdbStreamer(config.path, join(dirname(config.path), "export-spool"), paramQueue) : serverStreamer(client);
}

/** The rows of a JSONEachRow stream, whatever its chunking (the HTTP interface splits anywhere). */
export async function* jsonRows<T>(chunks: AsyncIterable<StreamedChunk>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const { bytes } of chunks) {
    const lines = (rest + decoder.decode(bytes, { stream: true })).split("\n");
    rest = lines.pop()!;
    for (const line of lines) if (line) yield JSON.parse(line) as T;
  }
  rest += decoder.decode();
  if (rest.trim()) yield JSON.parse(rest) as T;
}
