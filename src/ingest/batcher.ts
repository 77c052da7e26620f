import { unavailable } from "../errors.ts";

export interface BatcherOptions {
  /** Flush as soon as this many items wait. */
  maxBatch: number;
  /** Flush once the oldest waiting item is this old, however few wait. */
  maxDelayMs: number;
  /** Items admitted but not yet committed; `submit` waits beyond this. */
  maxOutstanding: number;
}

/**
 * Commits one batch (a single insert) and reports, per item, whether it was
 * stored now (true) or found already stored (false). Throws if nothing is
 * known to be stored.
 */
export type CommitBatch<T> = (items: T[]) => Promise<boolean[]>;

interface Group {
  results: boolean[];
  remaining: number;
  settled: boolean;
  resolve: (results: boolean[]) => void;
  reject: (err: unknown) => void;
}

interface Entry<T> {
  item: T;
  group: Group;
  index: number;
  enqueuedAt: number;
}

/**
 * Group commit: items from every caller are queued together and committed by
 * one writer in batches, by size or age, one batch at a time. A caller's
 * promise resolves only after every one of its items is committed.
 *
 * Memory is bounded by `maxOutstanding`: `submit` does not return until there
 * is room, so a streaming handler that awaits it stops reading its stream, and
 * flow control pushes back on the client instead of the server buffering.
 */
export class Batcher<T> {
  #queue: Entry<T>[] = [];
  #outstanding = 0;
  #waiters: { n: number; admit: () => void }[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #prompt = false;

  constructor(
    private readonly options: BatcherOptions,
    private readonly commit: CommitBatch<T>,
  ) {}

  /**
   * Waits for room, queues the items, and returns the promise of their commit
   * (wrapped, so awaiting `submit` only waits for admission).
   */
  async submit(items: T[]): Promise<{ committed: Promise<boolean[]> }> {
    if (this.#closed) throw unavailable("the server is shutting down; retry against another instance or later");
    if (items.length === 0) return { committed: Promise.resolve([]) };
    await this.#reserve(items.length);
    if (this.#closed) {
      this.#release(items.length);
      throw unavailable("the server is shutting down; retry against another instance or later");
    }
    const committed = new Promise<boolean[]>((resolve, reject) => {
      const group: Group = { results: new Array(items.length), remaining: items.length, settled: false, resolve, reject };
      const now = Date.now();
      items.forEach((item, index) => this.#queue.push({ item, group, index, enqueuedAt: now }));
    });
    this.#schedule();
    return { committed };
  }

  get outstanding(): number {
    return this.#outstanding;
  }

  /** From now on, commit whatever waits without waiting for size or age (shutdown). */
  flushPromptly(): void {
    this.#prompt = true;
    this.#schedule();
  }

  /** Refuses new items, commits everything already admitted, then resolves. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const waiter of this.#waiters.splice(0)) {
      this.#outstanding += waiter.n; // released again by submit(), which sees #closed
      waiter.admit();
    }
    while (this.#flushing || this.#queue.length > 0) {
      if (!this.#flushing) this.#startFlush();
      await this.#flushing;
    }
  }

  /** Resolves once `n` items of room are reserved for the caller. */
  #reserve(n: number): Promise<void> {
    if (this.#waiters.length === 0 && this.#outstanding + n <= this.options.maxOutstanding) {
      this.#outstanding += n;
      return Promise.resolve();
    }
    return new Promise((admit) => this.#waiters.push({ n, admit }));
  }

  #release(n: number): void {
    this.#outstanding -= n;
    // FIFO: a large request at the head is not starved by small ones behind it.
    while (this.#waiters.length > 0 && this.#outstanding + this.#waiters[0].n <= this.options.maxOutstanding) {
      const waiter = this.#waiters.shift()!;
      this.#outstanding += waiter.n;
      waiter.admit();
    }
  }

  #schedule(): void {
    if (this.#flushing || this.#queue.length === 0) return;
    const age = Date.now() - this.#queue[0].enqueuedAt;
    if (this.#queue.length >= this.options.maxBatch || age >= this.options.maxDelayMs || this.#prompt || this.#closed) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#startFlush();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, this.options.maxDelayMs - age);
    }
  }

  /**
   * The bookkeeping runs in `.finally`, after `#flushing` is assigned, so a
   * commit that throws synchronously cannot leave a settled promise behind
   * that would block every later flush.
   */
  #startFlush(): void {
    const batch = this.#queue.splice(0, this.options.maxBatch);
    this.#flushing = this.#flush(batch).finally(() => {
      this.#flushing = undefined;
      this.#release(batch.length);
      this.#schedule();
    });
  }

  async #flush(batch: Entry<T>[]): Promise<void> {
    try {
      const stored = await this.commit(batch.map((e) => e.item));
      for (let i = 0; i < batch.length; i++) {
        const { group, index } = batch[i];
        group.results[index] = stored[i];
        if (--group.remaining === 0 && !group.settled) {
          group.settled = true;
          group.resolve(group.results);
        }
      }
    } catch (err) {
      for (const { group } of batch) {
        if (!group.settled) {
          group.settled = true;
          group.reject(err);
        }
      }
    }
  }
}
