import { create } from "@bufbuild/protobuf";
import { EventSchema, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { mulberry32, realisticEvent } from "../../bench/realistic-events.ts";
import { ProblemKind } from "../../gen/auditlog/v1/integrity_pb.js";
import { StatsDimension, TimeBucket } from "../../gen/auditlog/v1/query_pb.js";
import { bearer, connectClients } from "./clients.ts";
import { startServer } from "./server.ts";

export interface CrashRound {
  seed: number;
  /** SIGKILL once this many events were acknowledged, plus a random delay. */
  killAfterAcks: number;
  /** Sent but unacknowledged events, sent again after the restart as a client would: */
  retried: number;
  acknowledged: number;
  /** Acknowledged events found after the restart: must equal `acknowledged`. */
  acknowledgedFound: number;
  /** Events stored more than once: must be 0. */
  duplicates: number;
  /** After the retries, every event sent: must equal the events sent. */
  stored: number;
  sent: number;
  restartMs: number;
  chainsOk: boolean;
  /** Stats by type and day from the rollup equal counting the events (the start-up repair tops up a batch a crash cut short). */
  statsMatch: boolean;
  /** The first problem VerifyChain found, if any. */
  chainProblem?: string;
}

const TENANT = "crash";

const sameRows = (a: unknown[], b: unknown[]) => {
  const text = (rows: unknown[]) => JSON.stringify(rows, (_, v) => (typeof v === "bigint" ? String(v) : v));
  return text(a) === text(b);
};

/**
 * One round of the crash test: `streams` Ingest streams (gRPC, several
 * messages each) and as many Append loops write events with known ids as
 * fast as they can; at a random moment the server is SIGKILLed. Then it is
 * restarted on the same data directory, and every event is read back.
 */
export async function crashRound(opts: { dataDir: string; round: number; seed: number; streams: number; perMessage: number }): Promise<CrashRound> {
  // Deterministic, so a failing round can be replayed from its seed.
  const random = mulberry32(opts.seed);
  // A random point in the stream of acknowledgements, not in wall-clock time:
  // on a busy machine a fixed delay may end before the first ack.
  const killAfterAcks = 1000 + Math.floor(random() * 5000);
  const extraDelayMs = Math.floor(random() * 200);
  const server = await startServer({ dataDir: opts.dataDir, env: { AUDITLOG_BATCH_MAX_DELAY_MS: "50" } });
  const writer = bearer(await server.token(TENANT, ["writer"]));
  const { ingest } = connectClients(server.baseUrl, "grpc");
  const json = connectClients(server.baseUrl, "connect-json").ingest;

  const acknowledged = new Set<string>();
  let reached: () => void;
  const enoughAcks = new Promise<void>((r) => (reached = r));
  const acked = (events: Event[]) => {
    for (const e of events) acknowledged.add(e.id);
    if (acknowledged.size >= killAfterAcks) reached();
  };
  const sentEvents = new Map<string, Event>();
  const sent = new Set<string>();
  let next = 0;
  const batch = (): Event[] =>
    Array.from({ length: opts.perMessage }, () => {
      const n = next++;
      const id = `r${opts.round}-${n}`;
      sent.add(id);
      const event = create(EventSchema, { ...realisticEvent(opts.seed * 1e7 + n), tenantId: "", id, attributes: { round: String(opts.round) } });
      sentEvents.set(id, event);
      return event;
    });

  let crashed = false;
  const streamLoop = async () => {
    while (!crashed) {
      const messages = Array.from({ length: 4 }, batch);
      try {
        await ingest.ingest((async function* () { for (const events of messages) yield { events }; })(), writer);
        acked(messages.flat());
      } catch {
        return; // the server is gone; nothing of this stream was acknowledged
      }
    }
  };
  const appendLoop = async () => {
    while (!crashed) {
      const events = batch();
      try {
        await json.append({ events }, writer);
        acked(events);
      } catch {
        return;
      }
    }
  };
  const loops = [...Array.from({ length: opts.streams }, streamLoop), ...Array.from({ length: opts.streams }, appendLoop)];
  await enoughAcks;
  await new Promise((r) => setTimeout(r, extraDelayMs));
  crashed = true;
  await server.crash();
  // Every answer a client got was sent before the process died.
  await Promise.all(loops);
  const ackedAtCrash = acknowledged;

  const started = performance.now();
  const restarted = await startServer({ dataDir: opts.dataDir });
  const restartMs = performance.now() - started;
  try {
    // What a client does after a failed call: send the same events again.
    const unacknowledged = [...sentEvents.values()].filter((e) => !ackedAtCrash.has(e.id));
    const retry = connectClients(restarted.baseUrl, "grpc").ingest;
    const retryWriter = bearer(await restarted.token(TENANT, ["writer"]));
    for (let i = 0; i < unacknowledged.length; i += 1000) await retry.append({ events: unacknowledged.slice(i, i + 1000) }, retryWriter);
    const auditor = await restarted.token(TENANT, ["auditor"]);
    const res = await fetch(`${restarted.baseUrl}/v1/export?format=ndjson&attr.round=${opts.round}`, { headers: { authorization: `Bearer ${auditor}` } });
    if (!res.ok) throw new Error(`export after restart: ${res.status} ${await res.text()}`);
    const ids = (await res.text()).split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id);
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const { integrity, query } = connectClients(restarted.baseUrl, "connect-binary");
    const verified = await integrity.verifyChain({}, bearer(auditor));
    // The round's types only: reads are audited in the tenant as they go.
    const types = [...new Set([...sentEvents.values()].map((e) => e.type))];
    const byTypeAndDay = { groupBy: [StatsDimension.TYPE, StatsDimension.TIME], bucket: TimeBucket.DAY, limit: 10_000 };
    const fromRollup = await query.getStats({ ...byTypeAndDay, filter: { types } }, bearer(auditor));
    // A query term that excludes nothing makes the same question count the events.
    const counted = await query.getStats({ ...byTypeAndDay, filter: { types, query: "-id:no-such-event" } }, bearer(auditor));
    return {
      seed: opts.seed,
      killAfterAcks,
      retried: unacknowledged.length,
      acknowledged: ackedAtCrash.size,
      acknowledgedFound: [...ackedAtCrash].filter((id) => counts.has(id)).length,
      duplicates: [...counts.values()].filter((c) => c > 1).length,
      stored: [...counts.keys()].filter((id) => sent.has(id)).length,
      sent: sent.size,
      restartMs,
      chainsOk: verified.ok,
      statsMatch: fromRollup.rows.length > 0 && fromRollup.fromRollup && !counted.fromRollup && sameRows(fromRollup.rows, counted.rows),
      chainProblem: verified.chains
        .filter((c) => c.problem)
        .map((c) => `${c.chainId}: ${ProblemKind[c.problem!.kind]} at seq ${c.problem!.seq}: ${c.problem!.detail}`)
        .join("; ") || undefined,
    };
  } finally {
    await restarted.stop();
  }
}
