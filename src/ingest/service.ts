import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { EventRejectionSchema, type Event, type EventRejection } from "../../gen/auditlog/v1/event_pb.js";
import { AppendResponseSchema, IngestResponseSchema, IngestService } from "../../gen/auditlog/v1/ingest_pb.js";
import { callerWithRole } from "../auth/context.ts";
import type { Principal } from "../auth/principal.ts";
import { writeTenant } from "../auth/tenant-scope.ts";
import type { Logger } from "pino";
import type { EventLimits } from "../config.ts";
import { invalidArgument } from "../errors.ts";
import { nowMicros } from "../time.ts";
import type { Batcher } from "./batcher.ts";
import type { PendingEvent } from "./commit.ts";
import { validateEvent } from "./validate.ts";

export interface IngestDeps {
  batcher: Batcher<PendingEvent>;
  limits: EventLimits;
  maxEventsPerRequest: number;
  log: Logger;
}

interface Prepared {
  pending: PendingEvent[];
  /** Position in the request of each pending event. */
  positions: number[];
  rejections: EventRejection[];
}

/** Validates a request's events one by one; bad ones become rejections, never errors. */
function prepare(events: Event[], firstIndex: number, principal: Principal, deps: IngestDeps): Prepared {
  if (events.length > deps.maxEventsPerRequest) {
    throw invalidArgument(
      `a request may carry at most ${deps.maxEventsPerRequest} events, this one has ${events.length}; split it`,
    );
  }
  const prepared: Prepared = { pending: [], positions: [], rejections: [] };
  const now = nowMicros();
  events.forEach((event, i) => {
    const index = BigInt(firstIndex + i);
    const tenant = writeTenant(principal, event.tenantId);
    if ("denied" in tenant) {
      prepared.rejections.push(
        create(EventRejectionSchema, { index, field: "tenant_id", reason: tenant.denied, code: "permission_denied" }),
      );
      return;
    }
    const result = validateEvent(event, tenant.tenant, now, deps.limits);
    if (!result.ok) {
      prepared.rejections.push(create(EventRejectionSchema, { index, ...result.invalid, code: "invalid_argument" }));
      return;
    }
    prepared.pending.push({ record: result.record, clientId: result.clientId, bytes: result.bytes });
    prepared.positions.push(i);
  });
  return prepared;
}

const countDuplicates = (stored: boolean[]) => stored.reduce((n, s) => (s ? n : n + 1), 0);

const WRITERS = ["writer", "admin"] as const;

export function ingestService(deps: IngestDeps): ServiceImpl<typeof IngestService> {
  return {
    async append(req, ctx) {
      const principal = callerWithRole(ctx, WRITERS, "Append");
      const { pending, positions, rejections } = prepare(req.events, 0, principal, deps);
      const stored = await (await deps.batcher.submit(pending)).committed;
      const ids = new Array<string>(req.events.length).fill("");
      positions.forEach((position, i) => (ids[position] = pending[i].record.id));
      return create(AppendResponseSchema, {
        acceptedCount: BigInt(pending.length),
        duplicateCount: BigInt(countDuplicates(stored)),
        rejections,
        ids,
      });
    },

    async ingest(requests, ctx) {
      const principal = callerWithRole(ctx, WRITERS, "Ingest");
      const commits: Promise<boolean[]>[] = [];
      const rejections: EventRejection[] = [];
      let failure: unknown;
      let seen = 0;
      let accepted = 0;
      for await (const req of requests) {
        if (failure) break;
        const prepared = prepare(req.events, seen, principal, deps);
        seen += req.events.length;
        accepted += prepared.pending.length;
        rejections.push(...prepared.rejections);
        // Awaiting admission (not commit) keeps many messages in flight while
        // bounding memory: when the queue is full, this stream is not read.
        const { committed } = await deps.batcher.submit(prepared.pending);
        if (deps.log.isLevelEnabled("debug")) {
          const bytes = prepared.pending.reduce((n, p) => n + p.bytes, 0);
          deps.log.debug({ rpc: "Ingest", admitted: prepared.pending.length, bytes }, "events admitted");
        }
        committed.catch((err) => (failure ??= err));
        commits.push(committed);
      }
      const results = await Promise.allSettled(commits);
      if (failure) throw failure;
      const duplicates = results.reduce((n, r) => n + (r.status === "fulfilled" ? countDuplicates(r.value) : 0), 0);
      return create(IngestResponseSchema, {
        acceptedCount: BigInt(accepted),
        duplicateCount: BigInt(duplicates),
        rejections,
      });
    },
  };
}
