import { resourceExhausted, unavailable } from "../errors.ts";

export interface BatcherOptions {
  /** Flush as soon as this many items wait; a batch holds about this many. */
  maxBatch: number;
  /** Flush as soon as this many bytes wait; a batch holds about this many. */
  maxBatchBytes: number;
  /**
   * Start a batch at most this often, and flush once the oldest waiting item
   * is this old, however few wait: an item that arrives when no batch has
   * started for this long goes out within GATHER_MS.
   */
  maxDelayMs: number;
  /** Bytes admitted but not yet committed; `submit` waits beyond this. */
  maxOutstandingBytes: number;
  /**
   * Bytes of callers waiting for room (their events are already decoded and
   * encoded while they wait); beyond this a submit is refused with
   * RESOURCE_EXHAUSTED instead of waiting. Default: maxOutstandingBytes.
   */
  maxWaitingBytes?: number;
}

/** How soon a caller refused for a full waiting room is told to try again. */
const WAITING_ROOM_RETRY_MS = 1000;

/**
 * Commits one batch (a single insert) and reports, per item, whether it was
 * stored now (true) or found already stored (false). Throws if nothing is
 * known to be stored.
 */
export type CommitBatch<T> = (items: T[]) => Promise<boolean[]>;

/** The items of one `submit`: committed together, in one batch, or not at all. */
interface Group<T> {
  items: T[];
  bytes: number;
  /** When this group's wait is up: its submit time plus its max delay. */
  dueAt: number;
  /** Submitted with the batcher's own delay (not a longer one): it may go out as soon as a batch may start. */
  eager: boolean;
  submittedAt: number;
  resolve: (results: boolean[]) => void;
  reject: (err: unknown) => void;
}

/**
 * How long an item that could go out at once waits for others: requests that
 * arrive together (messages of several streams sent on the same tick) then
 * share a batch. Without it, at 5,000 events/s in 500-event messages from
 * two clients, the first of each pair went alone and the second waited for
 * the next batch: 60–80% more INSERTs and an ack p99 of 522–675 ms, against
 * 245–456 with it (bench/RESULTS.md, "Batches paced, not delayed").
 */
const GATHER_MS = 5;

/**
 * Group commit: items from every caller are queued together and committed by
 * one writer in batches, by size or age, one batch at a time. A caller's
 * promise resolves only after every one of its items is committed.
 *
 * `maxDelayMs` paces the batches rather than holding every item for it: a
 * batch starts at most once per `maxDelayMs` (what keeps inserts few and
 * large: each costs the engine a part per table and tens of milliseconds of
 * CPU however small), and an item that arrives when none has started for
 * that long goes out within GATHER_MS instead of waiting. Under load nothing changes
 * (the next batch is what arrived during the previous commit); below it, an
 * acknowledgement is no longer a fixed delay plus the insert (README, "Why
 * group commit").
 *
 * A submit is never split across batches, so each request is all-or-nothing;
 * a batch may therefore exceed its limits by at most one request.
 *
 * Memory is bounded by `maxOutstandingBytes`: `submit` does not return until
 * there is room, so a streaming handler that awaits it stops reading its
 * stream, and flow control pushes back on the client instead of the server
 * buffering. A single submit larger than the bound is admitted alone.
 */
export class Batcher<T> {
  #queue: Group<T>[] = [];
  #queuedItems = 0;
  #queuedBytes = 0;
  #outstandingBytes = 0;
  #waiters: { bytes: number; admit: () => void }[] = [];
  #waitingBytes = 0;
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires. */
  #timerDue = Infinity;
  #closed = false;
  #prompt = false;
  /** The earliest `dueAt` in the queue (groups may wait different times). */
  #earliestDue = Infinity;
  /** The earliest submit time of an eager group in the queue. */
  #eagerSince = Infinity;
  /** When the last batch started. */
  #lastFlushAt = -Infinity;

  constructor(
    private readonly options: BatcherOptions,
    private readonly commit: CommitBatch<T>,
    /** The memory an item holds while it waits, in bytes. */
    private readonly weigh: (item: T) => number,
  ) {}

  /**
   * Waits for room, queues the items, and returns the promise of their commit
   * (wrapped, so awaiting `submit` only waits for admission). `maxDelayMs`
   * lets items that nobody waits on (audit events of reads) wait longer than
   * the batcher's default; they go out earlier with any batch that flushes.
   * `pastTheBound`: admitted at once, past `maxOutstandingBytes` and the
   * waiting room (audit events of reads: one small event each, and a read
   * fails without it or waits behind whole ingest requests).
   */
  async submit(items: T[], options: { maxDelayMs?: number; pastTheBound?: boolean } = {}): Promise<{ committed: Promise<boolean[]> }> {
    if (this.#closed) throw shuttingDown();
    if (items.length === 0) return { committed: Promise.resolve([]) };
    const bytes = items.reduce((n, item) => n + this.weigh(item), 0);
    await this.#reserve(bytes, options.pastTheBound ?? false);
    if (this.#closed) {
      this.#release(bytes);
      throw shuttingDown();
    }
    const committed = new Promise<boolean[]>((resolve, reject) => {
      const submittedAt = Date.now();
      const delay = options.maxDelayMs ?? this.options.maxDelayMs;
      const eager = delay <= this.options.maxDelayMs;
      const dueAt = submittedAt + delay;
      this.#queue.push({ items, bytes, dueAt, eager, submittedAt, resolve, reject });
      this.#earliestDue = Math.min(this.#earliestDue, dueAt);
      if (eager) this.#eagerSince = Math.min(this.#eagerSince, submittedAt);
    });
    this.#queuedItems += items.length;
    this.#queuedBytes += bytes;
    this.#schedule();
    return { committed };
  }

  /** Bytes admitted and not yet committed. */
  get outstandingBytes(): number {
    return this.#outstandingBytes;
  }

  /** From now on, commit whatever waits without waiting for size or age (shutdown). */
  flushPromptly(): void {
    this.#prompt = true;
    this.#schedule();
  }

  /** Refuses new items, commits everything already admitted, then resolves. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearTimer();
    for (const waiter of this.#waiters.splice(0)) {
      this.#waitingBytes -= waiter.bytes;
      this.#outstandingBytes += waiter.bytes; // released again by submit(), which sees #closed
      waiter.admit();
    }
    while (this.#flushing || this.#queue.length > 0) {
      if (!this.#flushing) this.#startFlush();
      await this.#flushing;
    }
  }

  #fits(bytes: number): boolean {
    return this.#outstandingBytes === 0 || this.#outstandingBytes + bytes <= this.options.maxOutstandingBytes;
  }

  /**
   * Resolves once `bytes` of room are reserved for the caller. Waiting is
   * bounded too: many concurrent callers would otherwise each hold their
   * prepared events outside the queue's bound (the first waiter always waits,
   * however large).
   */
  #reserve(bytes: number, pastTheBound: boolean): Promise<void> {
    if (pastTheBound || (this.#waiters.length === 0 && this.#fits(bytes))) {
      this.#outstandingBytes += bytes;
      return Promise.resolve();
    }
    const maxWaiting = this.options.maxWaitingBytes ?? this.options.maxOutstandingBytes;
    if (this.#waiters.length > 0 && this.#waitingBytes + bytes > maxWaiting) {
      return Promise.reject(
        resourceExhausted(
          `the server's ingest queue is full and ${this.#waiters.length} requests already wait for room; nothing of this one is stored, retry in ${WAITING_ROOM_RETRY_MS / 1000} s`,
          WAITING_ROOM_RETRY_MS,
        ),
      );
    }
    this.#waitingBytes += bytes;
    return new Promise((admit) => this.#waiters.push({ bytes, admit }));
  }

  #release(bytes: number): void {
    this.#outstandingBytes -= bytes;
    // FIFO: a large request at the head is not starved by small ones behind it.
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0].bytes)) {
      const waiter = this.#waiters.shift()!;
      this.#waitingBytes -= waiter.bytes;
      this.#outstandingBytes += waiter.bytes;
      waiter.admit();
    }
  }

  #schedule(): void {
    if (this.#flushing || this.#queue.length === 0) return;
    // An eager group goes out once a batch may start again, after GATHER_MS for what arrives with it.
    const eagerDue = Math.max(this.#eagerSince + Math.min(GATHER_MS, this.options.maxDelayMs), this.#lastFlushAt + this.options.maxDelayMs);
    const due = Math.min(this.#earliestDue, eagerDue);
    const wait = due - Date.now();
    const full = this.#queuedItems >= this.options.maxBatch || this.#queuedBytes >= this.options.maxBatchBytes;
    if (full || wait <= 0 || this.#prompt || this.#closed) {
      this.#clearTimer();
      this.#startFlush();
    } else if (!this.#timer || this.#timerDue > due) {
      // Re-armed only when a group queued since is due before the pending timer
      // (an eager submit behind a lazy one), not on every submit.
      this.#clearTimer();
      this.#timerDue = due;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#timerDue = Infinity;
        this.#schedule();
      }, wait);
    }
  }

  #clearTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }

  /**
   * Takes whole groups up to the batch limits (at least one). The bookkeeping
   * runs in `.finally`, after `#flushing` is assigned, so a commit that throws
   * synchronously cannot leave a settled promise behind that blocks every
   * later flush.
   */
  #startFlush(): void {
    const batch: Group<T>[] = [];
    let items = 0;
    let bytes = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0];
      const over = items + next.items.length > this.options.maxBatch || bytes + next.bytes > this.options.maxBatchBytes;
      if (batch.length > 0 && over) break;
      batch.push(this.#queue.shift()!);
      items += next.items.length;
      bytes += next.bytes;
    }
    this.#queuedItems -= items;
    this.#queuedBytes -= bytes;
    this.#earliestDue = this.#queue.reduce((due, group) => Math.min(due, group.dueAt), Infinity);
    this.#eagerSince = this.#queue.reduce((since, group) => (group.eager ? Math.min(since, group.submittedAt) : since), Infinity);
    this.#lastFlushAt = Date.now();
    this.#flushing = this.#flush(batch).finally(() => {
      this.#flushing = undefined;
      this.#release(bytes);
      this.#schedule();
    });
  }

  async #flush(batch: Group<T>[]): Promise<void> {
    try {
      const stored = await this.commit(batch.flatMap((g) => g.items));
      let offset = 0;
      for (const group of batch) {
        group.resolve(stored.slice(offset, offset + group.items.length));
        offset += group.items.length;
      }
    } catch (err) {
      for (const group of batch) group.reject(err);
    }
  }
}

const shuttingDown = () => unavailable("the server is shutting down; retry against another instance or later");
