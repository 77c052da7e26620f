import { mkdirSync } from "node:fs";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { StoreConfig } from "../config.ts";

/**
 * The one ClickHouse client of the process: embedded chDB persisted under the
 * data directory by default, or a ClickHouse server when CLICKHOUSE_URL is set.
 * Everything above this module speaks plain @clickhouse/client.
 */
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
  const connection = createChdbConnection({ path: config.path }) as unknown as NonNullable<
    Parameters<typeof createClient>[0]
  >["connection"];
  return createClient({ connection });
}
