import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { parseError, type createClient } from "@clickhouse/client";
import type { Session } from "chdb";

/** The contract @clickhouse/client's createClient takes as `connection`. */
export type Connection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>["connection"]>;
type QueryParams = Parameters<Connection["query"]>[0];
type QueryResult = Awaited<ReturnType<Connection["query"]>>;

/**
 * A chDB connection whose parameterized SELECTs run as engine streams, each
 * on a free one of `sessions` (its own connections to the engine), instead of
 * through chdb-node's async call.
 *
 * Why: chdb-node runs every parameterized async call of the process one at a
 * time, on every connection at once (its bundled libchdb once mixed up the
 * parameters of two such calls running side by side; see `globalParamChain`
 * in chdb's index.js). Every query of ours that carries a caller's values has
 * parameters, so on that path a search of all tenants that takes 2 s held
 * every other search, and the ingest path's idempotency lookup, and with it
 * the acknowledgements, for those 2 s. A stream binds its parameters while it
 * opens (on the calling thread, so two never open at once) and is not in
 * that queue; the rows come from the engine's threads. A session runs one
 * stream at a time: a query waits for the first session that is free.
 *
 * The answer is read whole before the call returns, as chdb's own connection
 * does (clickhouse-js expects errors from the call, not from the stream).
 * Statements that cannot stream (anything but SELECT and WITH … SELECT),
 * queries without parameters (not in that queue anyway) or with
 * `clickhouse_settings`, and the other methods go to `base`.
 */
export function streamedQueries(base: Connection, sessions: Session[]): Connection {
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

  return {
    query(params) {
      const hasParams = params.query_params !== undefined && Object.keys(params.query_params).length > 0;
      const hasSettings = params.clickhouse_settings !== undefined && Object.keys(params.clickhouse_settings).length > 0;
      if (!hasParams || hasSettings || !/^\s*(SELECT|WITH)\b/i.test(params.query)) return base.query(params);
      return stream(params);
    },
    ping: (params) => base.ping(params),
    insert: (params) => base.insert(params),
    command: (params) => base.command(params),
    exec: (params) => base.exec(params),
    async close() {
      closed = true;
      for (const session of sessions) session.close();
      await base.close();
    },
  };
}
