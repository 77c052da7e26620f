import { mkdirSync } from "node:fs";
import { Readable } from "node:stream";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";
import { engineArgs } from "./encryption.ts";
import { streamedQueries, type Connection, type ParamQueue } from "./streamed-queries.ts";

/**
 * The process's two ClickHouse clients, both on one store: embedded chDB
 * persisted under the data directory by default, or a ClickHouse server when
 * CLICKHOUSE_URL is set. Everything above this module speaks plain
 * @clickhouse/client.
 *
 * Why two: a chDB connection runs one query at a time, so on a single one
 * every search would queue behind the fsync'd group-commit INSERT (and its
 * materialized views) in flight. Writes (inserts, the idempotency lookup, the
 * chain heads) go through `writer`; reads through `reader`. On a server the
 * split keeps a burst of reads from taking every socket the insert path needs.
 * On chDB a parameterized SELECT that would wait in chdb-node's one queue of
 * such calls streams on a session of its own instead (see streamedQueries;
 * the reader has `readConnections` of them), so a slow read holds neither the
 * other reads nor the writer's lookups.
 */
export interface StoreClients {
  writer: ClickHouseClient;
  reader: ClickHouseClient;
  /** Inserts through the writer's connection, rows already serialized (see RowInserter). */
  insertRows: RowInserter;
  /** The process's calls in chdb-node's queue of parameterized calls (see streamedQueries); others that use it count there too. */
  paramQueue: ParamQueue;
  close(): Promise<void>;
}

/**
 * Inserts one block of rows already serialized as JSONCompactEachRow (one
 * row per line) into `table`'s `columns`. Measured on the ingest path: handing
 * the engine one prepared buffer costs a fraction of @clickhouse/client's
 * per-value encoding, and on chDB it skips the SQL parser (clickhouse-js's
 * chDB connection sends the rows inline in the statement text).
 */
export type RowInserter = (table: string, columns: readonly string[], rows: Buffer, settings?: InsertSettings) => Promise<void>;

/** Settings of one INSERT; names and values are our own constants, never user input. */
export type InsertSettings = Record<string, string | number>;

export async function createStoreClients(config: StoreConfig): Promise<StoreClients> {
  // chdb-node's queue of parameterized calls is one per process: both clients count in it.
  const paramQueue: ParamQueue = { inFlight: 0 };
  const writer = await openStoreClient(config, { streams: 1, paramQueue });
  const reader = await openStoreClient(config, { streams: config.kind === "chdb" ? config.readConnections : 1, paramQueue });
  return {
    writer: writer.client,
    reader: reader.client,
    insertRows: writer.insertRows,
    paramQueue,
    async close() {
      await Promise.all([reader.client.close(), writer.client.close()]);
    },
  };
}

/** One client: for tools that do one thing at a time (migrate, the benchmark loader). */
export async function createStoreClient(config: StoreConfig): Promise<ClickHouseClient> {
  return (await openStoreClient(config)).client;
}

/** The raw-insert entry of chdb's connection (`connection.chdb.rawInsert`), the part of it we use. */
interface ChdbRawInsert {
  chdb: {
    rawInsert(params: { table: string; columns: readonly string[]; values: Buffer; format: "JSONCompactEachRow"; settings?: InsertSettings }): Promise<unknown>;
  };
}

/**
 * `streams`: on chDB, how many sessions of its own the client's queries may
 * stream on when chdb-node's queue of parameterized calls (`paramQueue`,
 * shared by the process's clients) is busy; see streamedQueries.
 */
export async function openStoreClient(
  config: StoreConfig,
  { streams, paramQueue }: { streams: number; paramQueue: ParamQueue } = { streams: 1, paramQueue: { inFlight: 0 } },
): Promise<{ client: ClickHouseClient; insertRows: RowInserter }> {
  if (config.kind === "server") {
    const client = createClient({
      url: config.url,
      username: config.username,
      password: config.password,
      database: config.database,
      request_timeout: 30_000,
      clickhouse_settings: { date_time_input_format: "basic" },
    });
    const insertRows: RowInserter = async (table, columns, rows, settings) => {
      // Identifiers are our own constants (never user input); the rows travel as the request body.
      const result = await client.exec({
        query: `INSERT INTO ${table} (${columns.join(", ")}) FORMAT JSONCompactEachRow`,
        values: Readable.from([rows]),
        clickhouse_settings: settings,
      });
      // The socket returns to the pool only once the answer is read to its end.
      for await (const _ of result.stream) void _;
    };
    return { client, insertRows };
  }
  mkdirSync(config.path, { recursive: true });
  const args = engineArgs(config.path, config.encryptionKey);
  // Loaded lazily: the native engine is large and only the serving process needs it.
  const [{ createChdbConnection }, { Session }] = await Promise.all([import("chdb/connection"), import("chdb")]);
  // The engine starts with the arguments of the first connection on its path,
  // and @clickhouse/client's chDB connection takes none: a session opened
  // first with them starts it, and stays open as long as the client.
  const starter = args.length > 0 ? new Session(config.path, { connectionArgs: args }) : undefined;
  // chdb types the Connection against its own copy of @clickhouse/client-common;
  // the shapes are the same contract (see chdb/connection), only the declarations differ.
  // Several connections on one path share the process's one engine.
  const chdbConnection = createChdbConnection({ path: config.path });
  const sessions = Array.from({ length: streams }, () => new Session(config.path));
  const client = createClient({ connection: streamedQueries(chdbConnection as unknown as Connection, sessions, paramQueue) });
  const insertRows: RowInserter = async (table, columns, rows, settings) => {
    await (chdbConnection as unknown as ChdbRawInsert).chdb.rawInsert({ table, columns, values: rows, format: "JSONCompactEachRow", settings });
  };
  if (!starter) return { client, insertRows };
  const close = client.close.bind(client);
  client.close = async () => {
    await close();
    starter.close();
  };
  return { client, insertRows };
}
