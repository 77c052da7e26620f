import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { IngestService } from "../gen/auditlog/v1/ingest_pb.js";
import { IntegrityService } from "../gen/auditlog/v1/integrity_pb.js";
import { QueryService } from "../gen/auditlog/v1/query_pb.js";
import { peerAddressKey, plainAddress } from "./audit/caller.ts";
import { createReadAuditor } from "./audit/read-audit.ts";
import { authInterceptor } from "./auth/interceptor.ts";
import type { VerifyToken } from "./auth/verifier.ts";
import type { Config } from "./config.ts";
import { errorMappingInterceptor, unavailable } from "./errors.ts";
import { createRpcHandler } from "./http/connect-handler.ts";
import { exportRoute } from "./http/export-route.ts";
import { listenOnePort, type NodeServerRequest, type NodeServerResponse } from "./http/one-port.ts";
import { tailSocket } from "./http/tail-socket.ts";
import { Batcher } from "./ingest/batcher.ts";
import { createCommitter, type PendingEvent } from "./ingest/commit.ts";
import { IngestServiceWire } from "./ingest/ingest-wire-schema.ts";
import { ingestService } from "./ingest/service.ts";
import { getStatsWire, searchEventsWire, tailEventsWire } from "./query/query-wire-schema.ts";
import { getStatsEncoded, queryService, searchEventsEncoded, tailEventsEncoded } from "./query/service.ts";
import type { StoreClients } from "./store/client.ts";
import type { QueryStreamer } from "./store/query-stream.ts";
import type { StoreReadiness } from "./store/readiness.ts";
import { TailHub } from "./tail/hub.ts";
import { createChainer } from "./integrity/chainer.ts";
import { createAdmission } from "./limits/admission.ts";
import { createRateLimiter } from "./limits/token-bucket.ts";
import { TenantService } from "../gen/auditlog/v1/tenant_pb.js";
import { createTenantRedaction } from "./tenants/redaction.ts";
import type { TenantRegistry } from "./tenants/registry.ts";
import { tenantService } from "./tenants/service.ts";
import { integrityService } from "./integrity/service.ts";
import { readTableParts } from "./store/parts.ts";
import { repairFailedBatch } from "./store/repair.ts";
import { metricsInterceptor, scrapeAllowed, type Metrics } from "./metrics.ts";
import type { WindowOutcome } from "./query/recent-windows.ts";
import type { CheckpointSigner } from "./integrity/signing-key.ts";

export interface ServerDeps {
  config: Config;
  log: Logger;
  clients: StoreClients;
  store: StoreReadiness;
  verify: VerifyToken;
  /** Streams large results (exports) straight from the store. */
  stream: QueryStreamer;
  /** Signs checkpoints. */
  signer: CheckpointSigner;
  /** This instance's chain on every tenant. */
  chainId: string;
  /** The tenants and their policies, loaded before the store reports ready. */
  tenants: TenantRegistry;
  /** Served at GET /metrics (Prometheus text format). */
  metrics: Metrics;
}

/** Until the schema is in place, say so instead of failing on a missing table. */
function storeReadyInterceptor(store: StoreReadiness): Interceptor {
  return (next) => async (req) => {
    // The store's own error (hosts, credentials, SQL) stays in the log.
    if (!store.ready) throw unavailable("storage is not ready yet; retry shortly");
    return next(req);
  };
}

/** How long a refused request's body may keep arriving (and be discarded) before the connection is cut. */
const UNREAD_BODY_GRACE_MS = 5000;

export interface RunningServer {
  port: number;
  /** Graceful: stop accepting, let calls finish (up to the grace period), commit everything admitted. */
  close(): Promise<void>;
}

/** Where the checkpoint signing key (SPKI PEM) is published. */
export const SIGNING_KEY_PATH = "/.well-known/auditlog-signing-key";

/** Plain HTTP beside the RPCs: only what RPC cannot do well. */
function plainRoutes(deps: ServerDeps, download: ReturnType<typeof exportRoute>) {
  return async (req: NodeServerRequest, res: NodeServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (req.method === "GET" && path === "/v1/export") {
      if (!deps.store.ready) return unready(res);
      return download(req, res, url);
    }
    if (req.method === "GET" && path === SIGNING_KEY_PATH) {
      // Public by nature: anyone holding an export verifies it with this key.
      res.writeHead(200, { "content-type": "application/x-pem-file", "x-key-id": deps.signer.keyId, "cache-control": "max-age=300" });
      res.end(deps.signer.publicKeyPem);
      return;
    }
    if (req.method === "GET" && path === "/metrics") {
      if (!scrapeAllowed(deps.config.metricsToken, req.headers.authorization)) {
        res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Bearer" });
        res.end(JSON.stringify({ code: "unauthenticated", message: "GET /metrics needs Authorization: Bearer <AUDITLOG_METRICS_TOKEN>" }));
        return;
      }
      const body = await deps.metrics.registry.metrics();
      res.writeHead(200, { "content-type": deps.metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (req.method === "GET" && path === "/healthz") {
      const ok = deps.store.ready && (await deps.clients.reader.ping()).success;
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ok ? "ok" : "unavailable" }));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${path}` }));
  };
}

function unready(res: NodeServerResponse) {
  res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
  res.end(JSON.stringify({ code: "unavailable", message: "storage is not ready yet; retry shortly" }));
}

export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config, log } = deps;
  const { writer, reader } = deps.clients;
  const { tenants } = deps;
  const retentionDays = (tenant: string) => tenants.get(tenant)?.retentionDays || config.store.retentionDays;
  const admission = createAdmission({
    verify: deps.verify,
    registry: tenants,
    limiter: createRateLimiter({ burstSeconds: config.rateLimits.burstSeconds }),
    limits: config.rateLimits,
  });
  const redact = createTenantRedaction(config.redaction, tenants);
  const hub = new TailHub((err) => log.error({ err }, "a committed batch could not be delivered to the live tails; its events are stored"));
  const committer = createCommitter({
    client: writer,
    insertRows: deps.clients.insertRows,
    retentionDays,
    dedupWindowDays: config.store.dedupWindowDays,
    log,
    onCommitted: (events, receivedAtUs) => hub.publish(events, receivedAtUs),
    chainer: config.integrity.hashChain ? createChainer({ client: writer, chainId: deps.chainId, signer: deps.signer }) : undefined,
    onBatch: ({ events, seconds, failed }) => {
      if (failed) return deps.metrics.commitFailures.inc();
      deps.metrics.commitSeconds.observe(seconds);
      deps.metrics.commitEvents.observe(events);
    },
    // The rollups too on the embedded store only, as at start (src/store/repair.ts says why).
    repairAfterFailedInsert: (receivedAtUs) => repairFailedBatch(writer, log, receivedAtUs, config.store.kind === "chdb"),
  });
  const batcher = new Batcher<PendingEvent>(
    {
      maxBatch: config.ingest.batchMaxEvents,
      maxBatchBytes: config.ingest.batchMaxBytes,
      maxDelayMs: config.ingest.batchMaxDelayMs,
      maxOutstandingBytes: config.ingest.queueMaxBytes,
    },
    committer.commit,
    (event) => event.weight,
  );
  deps.metrics.watch({ queueBytes: () => batcher.outstandingBytes, tailSubscribers: () => hub.subscribers, tableParts: () => readTableParts(reader) });
  const recordRead = createReadAuditor({
    batcher,
    limits: config.ingest.limits,
    adminTenant: config.query.adminAuditTenant,
    maxDelayMs: config.query.readAuditMaxDelayMs,
    knownTenant: (tenant) => tenants.get(tenant) !== undefined,
    redact,
    log,
  });
  const readDeps = {
    client: reader,
    stream: deps.stream,
    settledUs: committer.settledUs,
    hub,
    queueMaxBytes: config.query.tailQueueMaxBytes,
    recordRead,
    onRecentWindow: (outcome: WindowOutcome) => deps.metrics.recentWindow.inc({ outcome }),
  };

  const ingest = ingestService({
    batcher,
    limits: config.ingest.limits,
    maxEventsPerRequest: config.ingest.maxEventsPerRequest,
    log,
    resolveTenant: async (tenant) => (await tenants.resolve(tenant)) !== undefined,
    redact,
    admission,
    onEvents: (outcome) => {
      for (const [result, n] of Object.entries(outcome)) if (n > 0) deps.metrics.ingestEvents.inc({ result }, n);
    },
  });
  const routes = (router: ConnectRouter) => {
    router.service(IngestService, ingest);
    router.service(TenantService, tenantService(tenants));
    router.service(QueryService, queryService({ ...readDeps, config: config.query }));
    router.service(
      IntegrityService,
      integrityService({ client: reader, stream: deps.stream, signer: deps.signer, retentionDays }),
    );
  };

  const handler = createRpcHandler({
    routes,
    // Binary requests skip protobuf-es's reflective codec for their events.
    binaryRoutes: (router) => {
      router.service(IngestServiceWire, ingest);
      router.rpc(searchEventsWire, searchEventsEncoded({ ...readDeps, config: config.query }));
      router.rpc(getStatsWire, getStatsEncoded({ ...readDeps, config: config.query }));
      router.rpc(tailEventsWire, tailEventsEncoded({ ...readDeps, config: config.query }));
    },
    ownDecoderServices: [IngestServiceWire.typeName],
    log,
    // First is outermost: errors from auth are mapped too, and counted as mapped.
    interceptors: [
      metricsInterceptor(deps.metrics),
      errorMappingInterceptor(log),
      authInterceptor(admission.admit),
      storeReadyInterceptor(deps.store),
    ],
    readMaxBytes: config.ingest.maxRequestBytes,
    // Connect's default (1 KiB) gzips a 30 KB search page: on a LAN that costs
    // more time than it saves (bench/RESULTS.md); big pages and exports still go compressed.
    compressMinBytes: config.compressMinBytes,
    jsonOptions: { ignoreUnknownFields: false },
    fallback: plainRoutes(deps, exportRoute({ ...readDeps, verify: admission.admit, log })),
    contextValues: (req) => createContextValues().set(peerAddressKey, plainAddress(req.socket.remoteAddress)),
  });
  const tail = tailSocket({ ...readDeps, verify: admission.admit, log });

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
        }, UNREAD_BODY_GRACE_MS).unref();
      });
    } else {
      // HTTP/1.1: Node drains an unread request body by itself, but not one
      // that was partly read (a body refused for its size). The connection
      // cannot be reused after such an answer: say so in the answer (clients
      // then open a new one instead of waiting on this one), drain what is
      // still coming, and cut it if it will not end.
      const writeHead = res.writeHead;
      res.writeHead = function (this: NodeServerResponse, ...args: Parameters<typeof writeHead>) {
        if (!req.complete) this.setHeader("connection", "close");
        return writeHead.apply(this, args);
      } as typeof writeHead;
      res.once("finish", () => {
        if (req.complete) return;
        req.resume();
        setTimeout(() => {
          // The socket may be gone already (closed by the client): destroy through the request.
          if (!req.complete && !req.destroyed) req.destroy();
        }, UNREAD_BODY_GRACE_MS).unref();
      });
    }
    handler(req, res);
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/v1/tail" || !deps.store.ready) {
      const status = path === "/v1/tail" ? "503 Service Unavailable" : "404 Not Found";
      socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    active++;
    socket.once("close", () => {
      if (--active === 0) onIdle?.();
    });
    void tail(req, socket, head);
  };
  const listener = await listenOnePort({ handler: tracked, upgrade, port: config.port, host: config.host, tls: config.tls });

  return {
    port: listener.port,
    async close() {
      listener.stopAccepting();
      batcher.flushPromptly();
      // Tails never end by themselves: tell them (with their cursor) to resume elsewhere.
      hub.closeAll();
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
