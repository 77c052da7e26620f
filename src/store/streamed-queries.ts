import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { parseError, type createClient } from "@clickhouse/client";
import type { Session } from "chdb";

/** The contract @clickhouse/client's createClient takes as `connection`. */
export type Connection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>["connection"]>;
type QueryParams = Parameters<Connection["query"]>[0];
type QueryResult = Awaited<ReturnType<Connection["query"]>>;

/**
 * The parameterized calls of this process that are in chdb-node's one queue
 * (see streamedQueries); shared by every connection of the process.
 */
export interface ParamQueue {
  inFlight: number;
}

/** A parameterized call that goes through chdb-node's queue, counted there while it runs. */
export async function inParamQueue<T>(queue: ParamQueue, call: () => Promise<T>): Promise<T> {
  queue.inFlight++;
  try {
    return await call();
  } finally {
    queue.inFlight--;
  }
}

/**
 * A chDB connection that keeps its parameterized SELECTs out of chdb-node's
 * process-wide queue when that queue is busy.
 *
 * Why: chdb-node runs every parameterized async call of the process one at a
 * time, on every connection at once (its bundled libchdb once mixed up the
 * parameters of two such calls running side by side; see `globalParamChain`
 * in chdb's index.js). Every query of ours that carries a caller's values has
 * parameters, so on that path a search of all tenants that takes 2 s held
 * every other search, and the ingest path's idempotency lookup, and with it
 * the acknowledgements, for those 2 s.
 *
 * A SELECT that arrives while the queue is empty takes the async call, which
 * plans and runs the query on a worker thread. One that arrives while
 * something is in the queue runs as an engine stream on a free one of
 * `sessions` (its own connections to the engine) instead: a stream binds its
 * parameters while it opens and is not in that queue. Opening plans the query
 * on the calling thread (about 10 ms for a search page on 10M events), which
 * is why streams are not taken when the queue is free. Two streams never open
 * at once; the rows come from the engine's threads. A session runs one stream
 * at a time: a query waits for the first session that is free.
 *
 * The answer is read whole before the call returns, as chdb's own connection
 * does (clickhouse-js expects errors from the call, not from the stream).
 * Statements that cannot stream (anything but SELECT and WITH … SELECT),
 * queries without parameters (never in that queue), and the other methods go
 * to `base`. Calls with `clickhouse_settings` are refused (see
 * refuseSessionSettings).
 */
export function streamedQueries(base: Connection, sessions: Session[], queue: ParamQueue): Connection {
  const free = [...sessions];
  const waiting: ((session: Session) => void)[] = [];
  let closed = false;

  /** The first free session; `signal` gives up the wait. */
  function acquire(signal: AbortSignal | undefined): Promise<Session> {
    const session = free.pop();
    if (session) return Promise.resolve(session);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        waiting.splice(waiting.indexOf(take), 1);
        reject(signal!.reason);
      };
      const take = (s: Session) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(s);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      waiting.push(take);
    });
  }

  function release(session: Session) {
    const next = waiting.shift();
    if (next) next(session);
    else free.push(session);
  }

  async function stream(params: QueryParams): Promise<QueryResult> {
    const signal = params.abort_signal;
    signal?.throwIfAborted();
    const session = await acquire(signal);
    const chunks: Buffer[] = [];
    try {
      if (closed) throw new Error("the store connection is closed");
      signal?.throwIfAborted();
      for await (const chunk of session.queryStreamBind(params.query, params.query_params ?? {}, { signal })) {
        const bytes = chunk.raw();
        chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      }
      // A session closed under a running stream ends it quietly: never take that for the whole answer.
      if (closed) throw new Error("the store connection closed during the query");
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      // The same error shape as chdb's connection gives (code and type parsed from "Code: N. DB::Exception: …").
      const mapped = parseError(err instanceof Error && err.message ? err.message : String(err));
      if (mapped !== err) mapped.cause = err;
      throw mapped;
    } finally {
      release(session);
    }
    const answer = Readable.from(chunks);
    // ResultSet.close() destroys an unread stream with an error: nothing else can fail here.
    answer.on("error", () => {});
    return { stream: answer, query_id: params.query_id ?? randomUUID(), response_headers: {}, http_status_code: 200 };
  }

  /** A call to `base`, counted in the queue while it is there if it has parameters. */
  const queued = <T>(params: { query_params?: Record<string, unknown> }, call: () => Promise<T>): Promise<T> =>
    hasParams(params) ? inParamQueue(queue, call) : call();

  return {
    query(params) {
      refuseSessionSettings(params);
      const streams = hasParams(params) && /^\s*(SELECT|WITH)\b/i.test(params.query);
      if (streams && queue.inFlight > 0) return stream(params);
      // chdb's async call gives up on an abort with an error of its own (the engine runs on): say it was the abort.
      const signal = params.abort_signal;
      return queued(params, () => base.query(params)).catch((err: unknown) => {
        throw signal?.aborted ? signal.reason : err;
      });
    },
    ping: (params) => base.ping(params),
    insert(params) {
      refuseSessionSettings(params);
      return queued(params, () => base.insert(params));
    },
    command(params) {
      refuseSessionSettings(params);
      return queued(params, () => base.command(params));
    },
    exec(params) {
      refuseSessionSettings(params);
      return queued(params, () => base.exec(params));
    },
    async close() {
      closed = true;
      for (const session of sessions) session.close();
      await base.close();
    },
  };
}

const nonEmpty = (values: object | undefined) => values !== undefined && Object.keys(values).length > 0;
const hasParams = (params: { query_params?: Record<string, unknown> }) => nonEmpty(params.query_params);

/**
 * chdb's connection applies `clickhouse_settings` as `SET` statements on its
 * one session, where they stay for every later call of the process, and for
 * calls running beside this one: a setting meant for one query would quietly
 * change all of them (and it did change scratch measurements). A `SET`
 * statement of our own would do the same. Settings go in the statement's own
 * `SETTINGS` clause instead, as the export and insert paths do.
 */
function refuseSessionSettings(params: { query?: string; clickhouse_settings?: object }): void {
  const given = Object.entries(params.clickhouse_settings ?? {}).filter(([, value]) => value !== undefined);
  const names = given.length > 0 ? `clickhouse_settings (${given.map(([name]) => name).join(", ")})` : /^\s*SET\b/i.test(params.query ?? "") ? "a SET statement" : undefined;
  if (names) {
    throw new Error(`${names} would stay on the embedded engine's session for every later query: put settings in the statement's SETTINGS clause`);
  }
}
