import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { parseError, type createClient } from "@clickhouse/client";
import type { Session } from "chdb";

/** The contract @clickhouse/client's createClient takes as `connection`. */
export type Connection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>["connection"]>;
type QueryParams = Parameters<Connection["query"]>[0];
type QueryResult = Awaited<ReturnType<Connection["query"]>>;

/**
 * A chDB connection whose `query` calls run as engine streams, each on the
 * least busy of `sessions` (its own connections to the engine), instead of
 * through chdb-node's async call.
 *
 * Why: chdb-node runs every parameterized async call of the process one at a
 * time, on every connection at once (its bundled libchdb once mixed up the
 * parameters of two such calls running side by side; see `globalParamChain`
 * in chdb's index.js). Every query of ours has parameters, so on that path a
 * search of all tenants that takes 2 s held every other search, and the
 * ingest path's idempotency lookup, and with it the acknowledgements, for
 * those 2 s. A stream binds its parameters while it opens (on the calling
 * thread, so two never open at once) and is not in that queue; the rows come
 * from the engine's threads. A session runs one stream at a time, so calls to
 * one session wait for each other here.
 *
 * The answer is read whole before the call returns, as chdb's own connection
 * does (clickhouse-js expects errors from the call, not from the stream).
 * Queries without parameters or with `clickhouse_settings`, and the other
 * methods, go to `base`.
 */
export function streamedQueries(base: Connection, sessions: Session[]): Connection {
  const queued = sessions.map(() => 0);
  const turns = sessions.map(() => Promise.resolve());

  async function stream(session: Session, params: QueryParams): Promise<QueryResult> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of session.queryStreamBind(params.query, params.query_params ?? {}, { signal: params.abort_signal })) {
        const bytes = chunk.raw();
        chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      }
    } catch (err) {
      // The same error shape as chdb's connection gives (code and type parsed from "Code: N. DB::Exception: …").
      const mapped = parseError(err instanceof Error && err.message ? err.message : String(err));
      if (mapped !== err) mapped.cause = err;
      throw mapped;
    }
    const answer = Readable.from([Buffer.concat(chunks)]);
    // ResultSet.close() destroys an unread stream with an error: nothing else can fail here.
    answer.on("error", () => {});
    return { stream: answer, query_id: params.query_id ?? randomUUID(), response_headers: {}, http_status_code: 200 };
  }

  return {
    query(params) {
      // Only SELECTs stream; a query without parameters is not in that queue anyway.
      const hasParams = params.query_params !== undefined && Object.keys(params.query_params).length > 0;
      const hasSettings = params.clickhouse_settings !== undefined && Object.keys(params.clickhouse_settings).length > 0;
      if (!hasParams || hasSettings) return base.query(params);
      const i = queued.indexOf(Math.min(...queued));
      queued[i]++;
      const answer = turns[i].then(() => stream(sessions[i], params));
      const done = answer.then(
        () => void queued[i]--,
        () => void queued[i]--,
      );
      turns[i] = done;
      return answer;
    },
    ping: (params) => base.ping(params),
    insert: (params) => base.insert(params),
    command: (params) => base.command(params),
    exec: (params) => base.exec(params),
    async close() {
      for (const session of sessions) session.close();
      await base.close();
    },
  };
}
