import type { EventRecord } from "../store/event-row.ts";
import { canonicalCheckpoint, canonicalEvent, chainHash, type CheckpointFields } from "./canonical.ts";
import type { CheckpointVerifier } from "./signing-key.ts";

export type ProblemKindName = "ALTERED" | "REMOVED" | "INSERTED" | "BAD_SIGNATURE" | "CHECKPOINT_MISMATCH";

export interface Problem {
  kind: ProblemKindName;
  seq: number;
  eventId: string;
  detail: string;
}

export interface ChainReport {
  tenantId: string;
  chainId: string;
  firstSeq: number;
  lastSeq: number;
  eventsChecked: number;
  checkpointsChecked: number;
  /** The first problem along the chain; undefined when it verified. */
  problem?: Problem;
}

export interface SignedCheckpoint extends CheckpointFields {
  signature: string;
  keyId: string;
}

/**
 * What a verifier knows about the chain's start when it has the checkpoints
 * table (the RPC): events before the first one present must have expired.
 * An offline verifier of an export, which may start anywhere, has no such claim.
 */
export interface StartRule {
  nowUs: number;
  retentionDays: number;
}

/**
 * Verifies one chain, fed in seq order, as events stream by (memory: the
 * chain's checkpoints, not its events). Used by VerifyChain and by the offline
 * `auditlog verify`, so both judge the same data the same way.
 */
export class ChainVerifier {
  #report: ChainReport;
  #problems: Problem[] = [];
  #prev: { seq: number; hash: string; signed: boolean } | undefined;
  /** Checkpoints from the checkpoints table, by seq; checked as their event passes. */
  #checkpoints = new Map<number, SignedCheckpoint>();

  constructor(
    tenantId: string,
    chainId: string,
    private readonly key: CheckpointVerifier,
    checkpoints: SignedCheckpoint[] = [],
    private readonly start?: StartRule,
  ) {
    this.#report = { tenantId, chainId, firstSeq: 0, lastSeq: 0, eventsChecked: 0, checkpointsChecked: 0 };
    for (const c of checkpoints) {
      this.#checkpoints.set(c.seq, c);
      this.#checkSignature(c, "");
    }
  }

  #problem(kind: ProblemKindName, seq: number, eventId: string, detail: string) {
    this.#problems.push({ kind, seq, eventId, detail });
  }

  #checkSignature(c: SignedCheckpoint, eventId: string) {
    this.#report.checkpointsChecked++;
    if (c.keyId !== this.key.keyId || !this.key.verify(canonicalCheckpoint(c), c.signature)) {
      const why = c.keyId !== this.key.keyId ? `was signed by key ${c.keyId}, not ${this.key.keyId}` : "has a signature that does not verify";
      this.#problem("BAD_SIGNATURE", c.seq, eventId, `the checkpoint at seq ${c.seq} ${why}`);
    }
  }

  /** The next event of the chain, in seq order. */
  add(record: EventRecord, receivedAtUs: number): void {
    const link = record.link!;
    const { seq } = link;
    this.#report.eventsChecked++;
    const prev = this.#prev;
    if (!prev) {
      this.#report.firstSeq = seq;
      if (seq > 1) this.#checkStart(seq);
    } else if (seq === prev.seq) {
      this.#problem("INSERTED", seq, record.id, `a second event claims seq ${seq}`);
      return;
    } else if (seq > prev.seq + 1) {
      this.#problem("REMOVED", prev.seq + 1, "", `events ${prev.seq + 1}..${seq - 1} are missing`);
    }
    this.#report.lastSeq = seq;
    let recomputed: string;
    try {
      recomputed = chainHash(link.prevHash, canonicalEvent(record, receivedAtUs, link.chainId, seq));
    } catch {
      // before/after no longer parse as JSON: nothing the service stored.
      recomputed = "";
    }
    if (recomputed !== link.hash) {
      this.#problem("ALTERED", seq, record.id, `the event at seq ${seq} no longer matches its hash: its stored content was changed`);
    } else if (prev && seq === prev.seq + 1 && link.prevHash !== prev.hash) {
      this.#problem("INSERTED", seq, record.id, `the event at seq ${seq} does not link to the event at seq ${prev.seq} (its prev_hash differs)`);
    }
    if (link.checkpoint) {
      const own = { tenantId: record.tenantId, chainId: link.chainId, seq, headHash: link.hash, timeUs: receivedAtUs, ...link.checkpoint };
      this.#checkSignature(own, record.id);
    }
    const signed = this.#checkpoints.get(seq);
    if (signed && signed.headHash !== link.hash) {
      this.#problem("CHECKPOINT_MISMATCH", seq, record.id, `the signed checkpoint at seq ${seq} names another hash than the event there`);
    }
    this.#prev = { seq, hash: link.hash, signed: Boolean(link.checkpoint) || this.#checkpoints.has(seq) };
  }

  /** Events before the first present one: expired by retention, or removed? */
  #checkStart(firstSeq: number) {
    if (!this.start) return;
    const covering = [...this.#checkpoints.values()].filter((c) => c.seq >= firstSeq - 1).sort((a, b) => a.seq - b.seq)[0];
    const expiresUs = covering && covering.timeUs + this.start.retentionDays * 86_400_000_000;
    if (!covering || covering.seq >= firstSeq || expiresUs > this.start.nowUs) {
      this.#problem("REMOVED", 1, "", `events 1..${firstSeq - 1} are missing and were not yet due for deletion by retention`);
    }
  }

  finish(): ChainReport {
    const last = this.#report.lastSeq;
    const newest = [...this.#checkpoints.values()].sort((a, b) => b.seq - a.seq)[0];
    const expired = (c: SignedCheckpoint) => this.start !== undefined && c.timeUs + this.start.retentionDays * 86_400_000_000 <= this.start.nowUs;
    if (newest && newest.seq > last && (this.#prev || !expired(newest))) {
      this.#problem("REMOVED", last + 1, "", `a signed checkpoint names seq ${newest.seq}, but the chain ends at seq ${last}: the newest events were removed`);
    }
    // Every batch ends with a signed head, so a whole chain (not a range of it)
    // ends signed; unsigned events at its end were added by someone else.
    if (this.start && this.#prev && !this.#prev.signed) {
      this.#problem("INSERTED", last, "", `the chain's last events (up to seq ${last}) are not covered by any signed checkpoint`);
    }
    // The earliest place; at one place, the finding that names its event.
    const problem = [...this.#problems].sort((a, b) => a.seq - b.seq || Number(b.eventId !== "") - Number(a.eventId !== ""))[0];
    return { ...this.#report, problem };
  }
}
