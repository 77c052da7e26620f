import type { ClickHouseClient } from "@clickhouse/client";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { IngestService } from "../gen/auditlog/v1/ingest_pb.js";
import { QueryService } from "../gen/auditlog/v1/query_pb.js";
import { authInterceptor } from "./auth/interceptor.ts";
import type { VerifyToken } from "./auth/verifier.ts";
import type { Config } from "./config.ts";
import { errorMappingInterceptor, unavailable } from "./errors.ts";
import { createRpcHandler } from "./http/connect-handler.ts";
import { listenOnePort, type NodeServerRequest, type NodeServerResponse } from "./http/one-port.ts";
import { Batcher } from "./ingest/batcher.ts";
import { createCommitter, type PendingEvent } from "./ingest/commit.ts";
import { ingestService } from "./ingest/service.ts";
import { queryService } from "./query/service.ts";
import type { StoreReadiness } from "./store/readiness.ts";

export interface ServerDeps {
  config: Config;
  log: Logger;
  client: ClickHouseClient;
  store: StoreReadiness;
  verify: VerifyToken;
}

/** Until the schema is in place, say so instead of failing on a missing table. */
function storeReadyInterceptor(store: StoreReadiness): Interceptor {
  return (next) => async (req) => {
    // The store's own error (hosts, credentials, SQL) stays in the log.
    if (!store.ready) throw unavailable("storage is not ready yet; retry shortly");
    return next(req);
  };
}

export interface RunningServer {
  port: number;
  /** Graceful: stop accepting, let calls finish (up to the grace period), commit everything admitted. */
  close(): Promise<void>;
}

/** Plain HTTP beside the RPCs: only what RPC cannot do well. */
function plainRoutes(deps: ServerDeps) {
  return async (req: NodeServerRequest, res: NodeServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") {
      const ok = deps.store.ready && (await deps.client.ping()).success;
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ok ? "ok" : "unavailable" }));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${path}` }));
  };
}

export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config, log, client } = deps;
  const commit = createCommitter({ client, retentionDays: config.store.retentionDays, log });
  const batcher = new Batcher<PendingEvent>(
    {
      maxBatch: config.ingest.batchMaxEvents,
      maxBatchBytes: config.ingest.batchMaxBytes,
      maxDelayMs: config.ingest.batchMaxDelayMs,
      maxOutstandingBytes: config.ingest.queueMaxBytes,
    },
    commit,
    (event) => event.bytes,
  );

  const routes = (router: ConnectRouter) => {
    router.service(
      IngestService,
      ingestService({
        batcher,
        limits: config.ingest.limits,
        maxEventsPerRequest: config.ingest.maxEventsPerRequest,
        log,
      }),
    );
    router.service(QueryService, queryService({ client, config: config.query }));
  };

  const handler = createRpcHandler({
    routes,
    log,
    // First is outermost: errors from auth are mapped too.
    interceptors: [errorMappingInterceptor(log), authInterceptor(deps.verify), storeReadyInterceptor(deps.store)],
    readMaxBytes: config.ingest.maxRequestBytes,
    jsonOptions: { ignoreUnknownFields: false },
    fallback: plainRoutes(deps),
  });

  let active = 0;
  let onIdle: (() => void) | undefined;
  const tracked = (req: NodeServerRequest, res: NodeServerResponse) => {
    active++;
    res.once("close", () => {
      if (--active === 0) onIdle?.();
    });
    if ("stream" in req) {
      // An early answer (a body over the limit, a bad message) leaves the rest
      // of an HTTP/2 request unread, and the stream open until the client gives
      // up. Once the answer is written, drain what is left so the stream ends
      // normally (gRPC trailers still go out after the data), and reset it if
      // the client keeps it open anyway.
      req.stream.once("finish", () => {
        if (req.complete) return;
        req.resume();
        setTimeout(() => {
          // Destroy, not close: a stream the client has reset stays "closed"
          // but undestroyed while its unread side waits for an end.
          if (!req.stream.destroyed) req.stream.destroy();
        }, 1000).unref();
      });
    }
    handler(req, res);
  };

  const listener = await listenOnePort({ handler: tracked, port: config.port, host: config.host, tls: config.tls });

  return {
    port: listener.port,
    async close() {
      listener.stopAccepting();
      batcher.flushPromptly();
      if (active > 0) {
        log.info({ active }, "waiting for in-flight calls to finish");
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.shutdownGraceMs);
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await batcher.close();
      listener.destroyAll();
    },
  };
}
