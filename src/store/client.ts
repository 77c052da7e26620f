import { mkdirSync } from "node:fs";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";

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
  // Loaded lazily: the native engine is large and only the serving process needs it.
  const { createChdbConnection } = await import("chdb/connection");
  // chdb types the Connection against its own copy of @clickhouse/client-common;
  // the shapes are the same contract (see chdb/connection), only the declarations differ.
  // Several connections on one path share the process's one engine.
  const connection = createChdbConnection({ path: config.path }) as unknown as NonNullable<
    Parameters<typeof createClient>[0]
  >["connection"];
  return createClient({ connection });
}
