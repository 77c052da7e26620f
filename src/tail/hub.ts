import type { PendingEvent } from "../ingest/commit.ts";
import type { RecordPredicate } from "../query/filter-match.ts";
import { recordFromEncoded, type EventRecord } from "../store/event-row.ts";
import { compareUtf8 } from "./position.ts";

/**
 * Why a subscriber's `next` rejects when the server ends its tail: shutdown,
 * or a batch that could not be delivered to it. Its message says which; the
 * tail then names the cursor to resume from, and a resumed tail replays what
 * it missed from storage.
 */
export class TailClosed extends Error {}

/** A committed event on its way to a subscriber. */
export interface Committed {
  record: EventRecord;
  receivedAtUs: number;
  bytes: number;
}

/** What a subscriber takes next: events in commit order, or notice of a gap. */
export type Delivery = { events: Committed[] } | { skipped: number };

/**
 * One live subscriber: a bounded queue between the committer (which must never
 * wait) and a consumer that may be slow. When the queue is full, matching
 * events are counted instead of queued until the consumer has drained the
 * queue; it then takes one `{ skipped }` delivery, so the gap sits exactly
 * where the events are missing.
 */
export class Subscription {
  #queue: Committed[] = [];
  #queuedBytes = 0;
  #skipped = 0;
  #wake: (() => void) | undefined;
  #closed: Error | undefined;

  constructor(
    readonly matches: RecordPredicate,
    /** The one tenant it can see, or undefined for all (an admin's tail). */
    readonly tenant: string | undefined,
    private readonly maxQueueBytes: number,
    private readonly onClose: (s: Subscription) => void,
  ) {}

  /** Called by the hub for every committed event of a batch published while subscribed, in commit order. */
  offer(event: Committed): void {
    if (this.#closed || !this.matches(event.record)) return;
    if (this.#skipped > 0 || (this.#queue.length > 0 && this.#queuedBytes + event.bytes > this.maxQueueBytes)) {
      this.#skipped++;
    } else {
      this.#queue.push(event);
      this.#queuedBytes += event.bytes;
    }
    this.#wake?.();
  }

  /** Waits for the next delivery of at most `max` events; rejects once closed or aborted. */
  async next(max: number, signal: AbortSignal): Promise<Delivery> {
    while (this.#queue.length === 0 && this.#skipped === 0) {
      if (this.#closed) throw this.#closed;
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.#wake = undefined;
          resolve();
        };
        this.#wake = done;
        signal.addEventListener("abort", done);
      });
    }
    if (this.#queue.length > 0) {
      const events = this.#queue.splice(0, max);
      for (const e of events) this.#queuedBytes -= e.bytes;
      return { events };
    }
    const skipped = this.#skipped;
    this.#skipped = 0;
    return { skipped };
  }

  /** Ends the subscription; a consumer waiting in `next` gets `reason`. */
  close(reason: Error): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#queue = [];
    this.onClose(this);
    this.#wake?.();
  }
}

/**
 * Fans committed batches out to live subscribers. `publish` runs inside the
 * commit step and costs nothing without subscribers; with them, it only
 * notes the batch and who is subscribed at that moment. The work happens in
 * a task of its own right after the commit step, once the batch's
 * acknowledgements are on their way: each event a subscriber's tenant scope
 * can see is rebuilt from its row (the queue held only its encodings), then
 * one filter check per event and subscriber, never a wait. (Done in the
 * commit step, an admin's all-tenant tail delayed every acknowledgement of a
 * 5,000-event batch by the parsing of its rows: 25–45 ms here.)
 */
export class TailHub {
  #subscriptions = new Set<Subscription>();
  /** Batches published and not yet delivered, oldest first, each with the subscribers it goes to. */
  #undelivered: { events: PendingEvent[]; receivedAtUs: number; to: Subscription[] }[] = [];

  /**
   * `onError`: a batch that could not be delivered (its events are stored).
   * Its subscribers' tails are ended, so that none goes on past a gap it
   * cannot report: each resumes from storage with its cursor.
   */
  constructor(private readonly onError: (err: unknown) => void) {}

  get subscribers(): number {
    return this.#subscriptions.size;
  }

  /** `tenant`: the only tenant `matches` can accept, if one; events of others are then not rebuilt for it. */
  subscribe(matches: RecordPredicate, maxQueueBytes: number, tenant?: string): Subscription {
    const subscription = new Subscription(matches, tenant, maxQueueBytes, (s) => this.#subscriptions.delete(s));
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /**
   * The events of one committed batch, all stamped `receivedAtUs`. Who gets
   * it is decided here, right after its insert: a tail that subscribes later
   * finds the batch in storage instead (src/tail/tail.ts).
   */
  publish(events: PendingEvent[], receivedAtUs: number): void {
    if (this.#subscriptions.size === 0) return;
    this.#undelivered.push({ events, receivedAtUs, to: [...this.#subscriptions] });
    if (this.#undelivered.length === 1) setImmediate(() => this.#deliverAll());
  }

  #deliverAll(): void {
    const batches = this.#undelivered;
    this.#undelivered = [];
    for (const batch of batches) {
      try {
        deliver(batch.events, batch.receivedAtUs, batch.to, (subscription, err) => {
          subscription.close(new TailClosed("a committed batch could not be delivered live"));
          this.#report(err);
        });
      } catch (err) {
        for (const subscription of batch.to) subscription.close(new TailClosed("a committed batch could not be delivered live"));
        this.#report(err);
      }
    }
  }

  #report(err: unknown): void {
    try {
      this.onError(err);
    } catch {
      // The handler only reports; the other batches are still delivered.
    }
  }

  /** Shutdown: every consumer's `next` rejects with TailClosed. */
  closeAll(): void {
    this.#undelivered = [];
    for (const subscription of [...this.#subscriptions]) subscription.close(new TailClosed("the server is shutting down"));
  }
}

/** `failed`: a subscription whose own filter threw on an event; it alone is closed, the others still get the batch. */
function deliver(events: PendingEvent[], receivedAtUs: number, to: Subscription[], failed: (subscription: Subscription, err: unknown) => void): void {
  const tenants = new Set<string>();
  for (const s of to) tenants.add(s.tenant ?? "");
  const seen = tenants.has("") ? () => true : (tenantId: string) => tenants.has(tenantId);
  // Commit order within a batch is (tenant_id, id), as storage sorts it.
  const ordered = events
    .filter(({ record }) => seen(record.tenantId))
    .map(({ record, bytes }) => ({ record: recordFromEncoded(record), receivedAtUs, bytes }))
    .sort((a, b) => compareUtf8(a.record.tenantId, b.record.tenantId) || compareUtf8(a.record.id, b.record.id));
  for (const subscription of to) {
    try {
      for (const event of ordered) subscription.offer(event);
    } catch (err) {
      failed(subscription, err);
    }
  }
}
