import { mkdirSync } from "node:fs";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";
import { engineArgs } from "./encryption.ts";

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
 */
export interface StoreClients {
  writer: ClickHouseClient;
  reader: ClickHouseClient;
  close(): Promise<void>;
}

export async function createStoreClients(config: StoreConfig): Promise<StoreClients> {
  const writer = await createStoreClient(config);
  const reader = await createStoreClient(config);
  return {
    writer,
    reader,
    async close() {
      await Promise.all([reader.close(), writer.close()]);
    },
  };
}

/** One client: for tools that do one thing at a time (migrate, the benchmark loader). */
export async function createStoreClient(config: StoreConfig): Promise<ClickHouseClient> {
  if (config.kind === "server") {
    return createClient({
      url: config.url,
      username: config.username,
      password: config.password,
      database: config.database,
      request_timeout: 30_000,
      clickhouse_settings: { date_time_input_format: "basic" },
    });
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
  const connection = createChdbConnection({ path: config.path }) as unknown as NonNullable<
    Parameters<typeof createClient>[0]
  >["connection"];
  const client = createClient({ connection });
  if (!starter) return client;
  const close = client.close.bind(client);
  client.close = async () => {
    await close();
    starter.close();
  };
  return client;
}
