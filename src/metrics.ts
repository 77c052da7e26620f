import { timingSafeEqual } from "node:crypto";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { failureOf } from "./errors.ts";
import type { TableParts } from "./store/parts.ts";

/** Latency buckets (seconds) from a point lookup to a slow export page. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_EVENTS = [1, 10, 100, 500, 1000, 2000, 5000, 10_000, 50_000];

/**
 * The service's Prometheus metrics, on a registry of their own (tests and
 * several servers in one process never share one). Labels never carry a
 * tenant, an actor or any other value from the events: the endpoint shows how
 * the service runs, not what it stores, and cardinality stays fixed.
 */
export function createMetrics() {
  const registry = new Registry();
  // Read at scrape time from the parts that hold them (see `watch`).
  const sources = { queueBytes: () => 0, tailSubscribers: () => 0, tableParts: async (): Promise<TableParts[]> => [] };
  // process_* and nodejs_*: RSS, CPU, heap, event-loop lag, GC pauses.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    /** Where the gauges read their values when scraped. */
    watch(from: typeof sources) {
      Object.assign(sources, from);
    },
    rpcRequests: new Counter({
      name: "auditlog_rpc_requests_total",
      help: "RPCs handled, by method (service/Method) and Connect code (ok when it succeeded)",
      labelNames: ["method", "code"] as const,
      registers,
    }),
    rpcSeconds: new Histogram({
      name: "auditlog_rpc_duration_seconds",
      help: "Time from a unary or client-streaming RPC's start to its answer (for Ingest: the whole stream), by method",
      labelNames: ["method"] as const,
      buckets: SECONDS,
      registers,
    }),
    ingestEvents: new Counter({
      name: "auditlog_ingest_events_total",
      help: "Events sent to Append and Ingest: stored, duplicate (already stored under that id) or rejected (invalid, refused)",
      labelNames: ["result"] as const,
      registers,
    }),
    commitSeconds: new Histogram({
      name: "auditlog_commit_duration_seconds",
      help: "Time a batch takes from its start to its INSERT's return (idempotency lookup, chaining, insert)",
      buckets: SECONDS,
      registers,
    }),
    commitEvents: new Histogram({
      name: "auditlog_commit_batch_events",
      help: "Events per committed batch (group commit: grows with load)",
      buckets: BATCH_EVENTS,
      registers,
    }),
    commitFailures: new Counter({
      name: "auditlog_commit_failures_total",
      help: "Batches the store did not accept (none of their events was acknowledged)",
      registers,
    }),
    queueBytes: new Gauge({
      name: "auditlog_ingest_queue_bytes",
      help: "Memory held by events admitted but not yet committed (bounded by AUDITLOG_QUEUE_MAX_BYTES)",
      registers,
      collect() {
        this.set(sources.queueBytes());
      },
    }),
    recentWindow: new Counter({
      name: "auditlog_search_recent_window_total",
      help: "Newest-first search pages by how the last day's window served them: answered, fell_back (the whole store was read after it), skipped",
      labelNames: ["outcome"] as const,
      registers,
    }),
    tailSubscribers: new Gauge({
      name: "auditlog_tail_subscribers",
      help: "Live tails (TailEvents streams and WebSocket tails) subscribed now",
      registers,
      collect() {
        this.set(sources.tailSubscribers());
      },
    }),
    storeParts: new Gauge({
      name: "auditlog_store_parts",
      help: "Active parts of each table of the store, by table and kind (parts, partitions): every part is opened by the reads that cannot skip it",
      labelNames: ["table", "kind"] as const,
      registers,
      async collect() {
        this.reset();
        // An unreachable store leaves these series out; the rest of the scrape still answers.
        const tables = await sources.tableParts().catch(() => []);
        for (const t of tables) {
          this.set({ table: t.table, kind: "parts" }, t.parts);
          this.set({ table: t.table, kind: "partitions" }, t.partitions);
        }
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The Connect code a failure reaches the client with. */
const codeOf = (err: unknown) => (err instanceof ConnectError ? codeToString(err.code) : failureOf(err).code);

/**
 * Counts every RPC by method and outcome, and times those whose answer ends
 * the call (unary and client-streaming). Outermost, so it sees the codes the
 * client gets.
 */
export function metricsInterceptor(metrics: Metrics): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const timed = !req.method.methodKind.startsWith("server") && req.method.methodKind !== "bidi_streaming";
    const stop = timed ? metrics.rpcSeconds.startTimer({ method }) : undefined;
    try {
      const res = await next(req);
      if (!res.stream) metrics.rpcRequests.inc({ method, code: "ok" });
      else {
        // A server stream's outcome is known only once it is read to its end.
        const messages = res.message;
        return {
          ...res,
          message: (async function* () {
            // A client that goes away ends the stream without an outcome.
            let code = "canceled";
            try {
              yield* messages;
              code = "ok";
            } catch (err) {
              code = codeOf(err);
              throw err;
            } finally {
              metrics.rpcRequests.inc({ method, code });
            }
          })(),
        };
      }
      return res;
    } catch (err) {
      metrics.rpcRequests.inc({ method, code: codeOf(err) });
      throw err;
    } finally {
      stop?.();
    }
  };
}

/**
 * Whether a scrape may read the metrics: always when no token is configured
 * (the endpoint holds no event data), else only with `Authorization: Bearer <token>`.
 */
export function scrapeAllowed(token: string | undefined, authorization: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(authorization ?? "");
  const wanted = Buffer.from(`Bearer ${token}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
