import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { EventRejectionSchema, type Event, type EventRejection } from "../../gen/auditlog/v1/event_pb.js";
import { AppendResponseSchema, IngestResponseSchema, IngestService } from "../../gen/auditlog/v1/ingest_pb.js";
import { callerPermitted } from "../auth/context.ts";
import type { Principal } from "../auth/principal.ts";
import { writeTenant } from "../auth/tenant-scope.ts";
import type { Logger } from "pino";
import type { EventLimits } from "../config.ts";
import { AuditlogError, invalidArgument } from "../errors.ts";
import type { Admission } from "../limits/admission.ts";
import type { EventRecord } from "../store/event-row.ts";
import { nowMicros } from "../time.ts";
import type { Batcher } from "./batcher.ts";
import { encodeOnArrival, type PendingEvent } from "./commit.ts";
import { decodeEvent } from "./event-wire.ts";
import type { IngestServiceWire } from "./ingest-wire-schema.ts";
import { validateEvent } from "./validate.ts";

export interface IngestDeps {
  batcher: Batcher<PendingEvent>;
  limits: EventLimits;
  maxEventsPerRequest: number;
  log: Logger;
  /** Whether events may be written to a tenant (it exists, or is created now when auto-creation is on). */
  resolveTenant(tenant: string): Promise<boolean>;
  /** Masks an event by its tenant's redaction rules, in place. */
  redact(record: EventRecord): void;
  admission: Pick<Admission, "chargeEvents">;
  /** Told what became of a request's events once it is answered (metrics). */
  onEvents?: (outcome: { stored: number; duplicate: number; rejected: number }) => void;
}

interface Prepared {
  pending: PendingEvent[];
  /** Position in the request of each pending event. */
  positions: number[];
  rejections: EventRejection[];
}

/**
 * A request's event: decoded by Connect (JSON requests), or still encoded
 * (binary requests, served through IngestServiceWire and decoded here by
 * the hand-written decoder, so one malformed event is rejected alone).
 */
type EventInput = Event | Uint8Array;

function decoded(input: EventInput): Event | { invalid: string } {
  if (!(input instanceof Uint8Array)) return input;
  try {
    return decodeEvent(input);
  } catch (err) {
    return { invalid: `the event is not a valid protobuf auditlog.v1.Event (${(err as Error).message}); check the client uses the current proto/auditlog/v1 contracts` };
  }
}

/**
 * Validates a request's events one by one; bad ones become rejections,
 * never errors. Each event is decoded, checked and encoded before the next
 * one is decoded, so only one decoded event is alive at a time: decoding a
 * 500-event message whole kept hundreds of them alive for a scavenge to copy.
 */
async function prepare(inputs: EventInput[], firstIndex: number, principal: Principal, deps: IngestDeps): Promise<Prepared> {
  if (inputs.length > deps.maxEventsPerRequest) {
    throw invalidArgument(
      `a request may carry at most ${deps.maxEventsPerRequest} events, this one has ${inputs.length}; split it`,
    );
  }
  const prepared: Prepared = { pending: [], positions: [], rejections: [] };
  const perTenant = new Map<string, number>();
  // Only an admin names other tenants; each one named is looked up once per request.
  const known = new Map<string, boolean>([[principal.tenant, true]]);
  let now = nowMicros();
  for (let i = 0; i < inputs.length; i++) {
    const event = decoded(inputs[i]);
    const index = BigInt(firstIndex + i);
    if ("invalid" in event) {
      prepared.rejections.push(create(EventRejectionSchema, { index, field: "", reason: event.invalid, code: "invalid_argument" }));
      continue;
    }
    const tenant = writeTenant(principal, event.tenantId);
    if ("denied" in tenant) {
      prepared.rejections.push(
        create(EventRejectionSchema, { index, field: "tenant_id", reason: tenant.denied, code: "permission_denied" }),
      );
      continue;
    }
    let exists = known.get(tenant.tenant);
    if (exists === undefined) {
      known.set(tenant.tenant, (exists = await deps.resolveTenant(tenant.tenant)));
      // Times default to, and are checked against, the clock after the lookup.
      now = nowMicros();
    }
    if (!exists) {
      const reason = `tenant "${tenant.tenant}" does not exist; create it with TenantService.CreateTenant first`;
      prepared.rejections.push(create(EventRejectionSchema, { index, field: "tenant_id", reason, code: "not_found" }));
      continue;
    }
    const result = validateEvent(event, tenant.tenant, now, deps.limits);
    if (!result.ok) {
      prepared.rejections.push(create(EventRejectionSchema, { index, ...result.invalid, code: "invalid_argument" }));
      continue;
    }
    const { record, clientId, bytes } = result;
    perTenant.set(record.tenantId, (perTenant.get(record.tenantId) ?? 0) + 1);
    deps.redact(record);
    const encoded = encodeOnArrival(record);
    prepared.pending.push({ record: encoded.record, weight: encoded.weight, clientId, bytes });
    prepared.positions.push(i);
  }
  // Charged before anything is queued: a refused request leaves nothing behind.
  deps.admission.chargeEvents(principal, perTenant);
  return prepared;
}

const countDuplicates = (stored: boolean[]) => stored.reduce((n, s) => (s ? n : n + 1), 0);

/** Rejections an Ingest response lists (about 1.3 MB of them at most); IngestResponse.rejected_count counts them all. */
export const MAX_LISTED_REJECTIONS = 10_000;

/**
 * The IngestService implementation. The same one serves IngestServiceWire
 * (binary requests, events still encoded): `prepare` takes either form.
 */
export function ingestService(deps: IngestDeps): ServiceImpl<typeof IngestService> & ServiceImpl<typeof IngestServiceWire> {
  return {
    async append(req, ctx) {
      const principal = callerPermitted(ctx, "IngestService.Append");
      const { pending, positions, rejections } = await prepare(req.events, 0, principal, deps);
      const stored = await (await deps.batcher.submit(pending)).committed;
      const ids = new Array<string>(req.events.length).fill("");
      positions.forEach((position, i) => (ids[position] = pending[i].record.id));
      const duplicates = countDuplicates(stored);
      deps.onEvents?.({ stored: pending.length - duplicates, duplicate: duplicates, rejected: rejections.length });
      return create(AppendResponseSchema, {
        acceptedCount: BigInt(pending.length),
        duplicateCount: BigInt(duplicates),
        rejections,
        ids,
      });
    },

    async ingest(requests, ctx) {
      const principal = callerPermitted(ctx, "IngestService.Ingest");
      // Running totals, not a promise per message: a stream may live for days.
      const inFlight = new Set<Promise<void>>();
      // The first MAX_LISTED_REJECTIONS, so the response stays small (gRPC clients refuse messages over 4 MiB).
      const rejections: EventRejection[] = [];
      let rejected = 0;
      let failure: unknown;
      let seen = 0;
      let accepted = 0;
      let duplicates = 0;
      /** Every commit of this stream so far has ended (none is acknowledged before). */
      const settled = async () => {
        while (inFlight.size > 0) await Promise.all(inFlight);
      };
      /**
       * The stream ends at a message refused whole (its own error). What
       * earlier messages queued is stored first: the error says it was, so
       * it must be (retries of it are deduplicated).
       */
      const endedAt = async (err: unknown): Promise<never> => {
        await settled();
        if (failure) throw failure;
        if (err instanceof AuditlogError && seen > 0) {
          const rejectedText = rejected > 0 ? `, ${rejected} rejected` : "";
          throw new AuditlogError(err.kind, `${err.message} (the events before index ${seen} of this stream were accepted and stored: ${accepted}${rejectedText})`, err);
        }
        throw err;
      };
      for await (const req of requests) {
        if (failure) break;
        let prepared: Prepared;
        let committed: Promise<boolean[]>;
        try {
          prepared = await prepare(req.events, seen, principal, deps);
          // Awaiting admission (not commit) keeps many messages in flight while
          // bounding memory: when the queue is full, this stream is not read.
          ({ committed } = await deps.batcher.submit(prepared.pending));
        } catch (err) {
          return endedAt(err);
        }
        seen += req.events.length;
        accepted += prepared.pending.length;
        rejected += prepared.rejections.length;
        rejections.push(...prepared.rejections.slice(0, Math.max(0, MAX_LISTED_REJECTIONS - rejections.length)));
        if (deps.log.isLevelEnabled("debug")) {
          const weight = prepared.pending.reduce((n, p) => n + p.weight, 0);
          deps.log.debug({ rpc: "Ingest", admitted: prepared.pending.length, weight }, "events admitted");
        }
        const done: Promise<void> = committed.then(
          (stored) => void (duplicates += countDuplicates(stored)),
          (err: unknown) => void (failure ??= err),
        );
        inFlight.add(done);
        void done.finally(() => inFlight.delete(done));
      }
      await settled();
      if (failure) throw failure;
      deps.onEvents?.({ stored: accepted - duplicates, duplicate: duplicates, rejected });
      return create(IngestResponseSchema, {
        acceptedCount: BigInt(accepted),
        duplicateCount: BigInt(duplicates),
        rejections,
        rejectedCount: BigInt(rejected),
      });
    },
  };
}
