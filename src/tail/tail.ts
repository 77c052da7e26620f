import type { ClickHouseClient } from "@clickhouse/client";
import { create } from "@bufbuild/protobuf";
import type { EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import { TailEventsResponseSchema, TailLagSchema, type TailEventsResponse } from "../../gen/auditlog/v1/query_pb.js";
import { inScope, type TenantScope } from "../auth/tenant-scope.ts";
import { matchFilter } from "../query/filter-match.ts";
import { filterConditions } from "../query/filter-sql.ts";
import { fromRecord, fromSelectedRow, SELECT_COLUMNS, type SelectedRow } from "../store/event-row.ts";
import { unauthenticated, unavailable } from "../errors.ts";
import { nowMicros } from "../time.ts";
import { TailClosed, type TailHub } from "./hub.ts";
import { comparePositions, encodeCursor, type TailPosition } from "./position.ts";

export interface TailDeps {
  client: ClickHouseClient;
  hub: TailHub;
  settledUs: () => number;
  /** Bound of each subscriber's queue of live events. */
  queueMaxBytes: number;
}

export interface TailRequest {
  scope: TenantScope;
  filter: EventFilter | undefined;
  /** Replay from here (exclusive); undefined: start now. */
  after: TailPosition | undefined;
  signal: AbortSignal;
  /** When the caller's token stops being accepted: the tail ends then (UNAUTHENTICATED, with the cursor to resume from). */
  validUntilMs?: number;
}

/** The longest setTimeout (about 24.8 days); a later expiry is checked at each delivery instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Events per message, during replay and live. */
const MESSAGE_EVENTS = 500;
/** Rows per replay query. */
const REPLAY_PAGE = 5000;

/**
 * A tail as a stream of responses, for the RPC and the WebSocket alike.
 *
 * Replay then live, without gaps or duplicates: replay pages through storage
 * in commit order (received_at, tenant_id, id) until a page comes back short,
 * then subscribes to the hub, replays once more (what committed in between),
 * and from then on delivers live events, dropping those at or before the last
 * position delivered. Each batch is published right after its insert, so a
 * batch is either in that last replay or arrives live (or both; the position
 * check removes the repeat). Starting now needs no replay: subscribe, then
 * take the settled commit time as the position.
 */
export async function* tailEvents(deps: TailDeps, req: TailRequest, counter: { delivered: number }): AsyncGenerator<TailEventsResponse> {
  // Relative times in the query (`since:1h`) count back from the subscription, for the replay and the live events alike.
  const nowUs = nowMicros();
  const matches = matchFilter(req.scope, req.filter, nowUs);
  let position = req.after;
  const validUntilMs = req.validUntilMs ?? Infinity;
  /** A tail may run for days: it never runs past its token, which would keep reading after an expiry, a key's removal or a role's change. */
  const expired = () =>
    unauthenticated(
      `the token has expired; open the tail again with a new token${position ? ` and cursor "${encodeCursor(position)}" to miss nothing` : ""}`,
    );
  const checkValid = () => {
    if (Date.now() >= validUntilMs) throw expired();
  };

  async function* replay(): AsyncGenerator<TailEventsResponse> {
    for (;;) {
      const rows = await replayPage(deps.client, req, position!, nowUs);
      for (let i = 0; i < rows.length; i += MESSAGE_EVENTS) {
        const page = rows.slice(i, i + MESSAGE_EVENTS);
        checkValid();
        const last = page[page.length - 1];
        position = { receivedAtUs: Number(last.received_at_us), tenantId: last.tenant_id, id: last.id };
        counter.delivered += page.length;
        yield create(TailEventsResponseSchema, { events: page.map(fromSelectedRow), cursor: encodeCursor(position) });
      }
      if (rows.length < REPLAY_PAGE) return;
    }
  }

  if (position) yield* replay();
  const subscription = deps.hub.subscribe(matches, deps.queueMaxBytes, req.scope.kind === "tenant" ? req.scope.tenant : undefined);
  // Waiting for live events ends at the caller's abort or at the token's expiry, whichever comes first.
  const waiting = new AbortController();
  let tokenExpired = false;
  const onAbort = () => waiting.abort(req.signal.reason);
  req.signal.addEventListener("abort", onAbort, { once: true });
  if (req.signal.aborted) onAbort();
  const untilExpiry = Math.ceil(validUntilMs - Date.now());
  const expiryTimer =
    untilExpiry < MAX_TIMER_MS
      ? setTimeout(() => {
          tokenExpired = true;
          waiting.abort(expired());
        }, Math.max(0, untilExpiry))
      : undefined;
  expiryTimer?.unref();
  try {
    if (position) yield* replay();
    else position = { receivedAtUs: deps.settledUs() + 1, tenantId: "", id: "" };
    yield create(TailEventsResponseSchema, { cursor: encodeCursor(position), live: true });

    for (;;) {
      const delivery = await subscription.next(MESSAGE_EVENTS, waiting.signal).catch((err) => {
        if (tokenExpired && !req.signal.aborted) throw expired();
        if (!(err instanceof TailClosed)) throw err;
        throw unavailable(`${err.message}; resume on another instance or later with cursor "${encodeCursor(position!)}"`);
      });
      checkValid();
      if ("skipped" in delivery) {
        const cursor = encodeCursor(position);
        yield create(TailEventsResponseSchema, {
          cursor,
          lag: create(TailLagSchema, { skippedCount: BigInt(delivery.skipped), resumeCursor: cursor }),
        });
        continue;
      }
      const fresh = delivery.events.filter(
        (e) => comparePositions({ receivedAtUs: e.receivedAtUs, tenantId: e.record.tenantId, id: e.record.id }, position!) > 0,
      );
      if (fresh.length === 0) continue;
      const last = fresh[fresh.length - 1];
      position = { receivedAtUs: last.receivedAtUs, tenantId: last.record.tenantId, id: last.record.id };
      counter.delivered += fresh.length;
      yield create(TailEventsResponseSchema, {
        events: fresh.map((e) => fromRecord(e.record, e.receivedAtUs)),
        cursor: encodeCursor(position),
      });
    }
  } finally {
    subscription.close(new Error("tail ended"));
    clearTimeout(expiryTimer);
    req.signal.removeEventListener("abort", onAbort);
  }
}

async function replayPage(client: ClickHouseClient, req: TailRequest, after: TailPosition, nowUs: number): Promise<SelectedRow[]> {
  const where = filterConditions(req.scope, req.filter, { nowUs });
  const at = `fromUnixTimestamp64Micro(${where.param("Int64", after.receivedAtUs)}, 'UTC')`;
  // The plain bound prunes partitions (they are by week of received_at).
  where.add(`received_at >= ${at}`);
  where.add(`(received_at, tenant_id, id) > (${at}, ${where.param("String", after.tenantId)}, ${where.param("String", after.id)})`);
  const { sql, params } = where.build();
  const result = await client.query({
    query: `SELECT ${SELECT_COLUMNS} FROM events WHERE ${sql} ORDER BY received_at, tenant_id, id LIMIT ${REPLAY_PAGE}`,
    query_params: params,
    format: "JSONEachRow",
    abort_signal: req.signal,
  });
  return inScope(req.scope, await result.json<SelectedRow>());
}
