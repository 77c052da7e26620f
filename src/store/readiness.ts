import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { ConfigError, type StoreConfig } from "../config.ts";
import { repairDerivedTables } from "./repair.ts";
import { checkSchema, migrate } from "./schema.ts";

export interface StoreReadiness {
  /** True once the schema is in place; until then every RPC answers UNAVAILABLE. */
  readonly ready: boolean;
  /** Resolves when ready (or when stopped); rejects when the store does not match the configuration. */
  whenReady: Promise<void>;
  stop(): void;
}

/**
 * Brings the schema up, retrying with backoff while the store is unreachable,
 * so the service can start before its ClickHouse server (docker compose,
 * Kubernetes) and reports "not ready" on /healthz meanwhile instead of dying.
 */
export function prepareStore(
  client: ClickHouseClient,
  config: StoreConfig,
  log: Logger,
  /** What else must be read from the store before the service can answer (the tenants). */
  afterSchema: () => Promise<void> = async () => {},
): StoreReadiness {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const state: StoreReadiness = {
    ready: false,
    whenReady: Promise.resolve(),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
  const mutable = state as { -readonly [K in keyof StoreReadiness]: StoreReadiness[K] };
  mutable.whenReady = new Promise<void>((resolve, reject) => {
    const attempt = async (delayMs: number) => {
      if (stopped) return resolve();
      try {
        if (config.kind === "server" && !config.migrate) await checkSchema(client);
        else await migrate(client, config);
        await repairDerivedTables(client, log, config.kind === "chdb");
        await afterSchema();
        mutable.ready = true;
        resolve();
      } catch (err) {
        // A store that does not match the configuration will not heal by waiting.
        if (err instanceof ConfigError) return reject(err);
        // Not only "unreachable": a refused privilege or a failed statement retries too, and says so.
        const reason = err instanceof Error ? err.message.split("\n", 1)[0] : String(err);
        log.warn({ err, retryInMs: delayMs }, `the store could not be prepared yet (${reason}); retrying`);
        timer = setTimeout(() => void attempt(Math.min(delayMs * 2, 10_000)), delayMs);
      }
    };
    void attempt(250);
  });
  return state;
}
