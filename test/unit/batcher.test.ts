import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuditlogError } from "../../src/errors.ts";
import { Batcher, type BatcherOptions } from "../../src/ingest/batcher.ts";

/**
 * An in-memory commit step. Every batch it receives is recorded; in "auto"
 * mode it stores the batch at once, in "manual" mode each batch waits until
 * the test calls `succeed()` or `fail()`. An item named `dup-...` counts as
 * already stored (false); anything else as newly stored (true).
 */
class Store {
  readonly batches: string[][] = [];
  #pending: { items: string[]; resolve: (r: boolean[]) => void; reject: (e: unknown) => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext: unknown = undefined;

  constructor(private readonly mode: "auto" | "manual") {}

  readonly commit = (items: string[]): Promise<boolean[]> => {
    this.batches.push([...items]);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const results = items.map((item) => !item.startsWith("dup"));
    if (this.mode === "auto") {
      const failure = this.failNext;
      this.failNext = undefined;
      return Promise.resolve().then(() => {
        this.inFlight--;
        if (failure !== undefined) throw failure;
        return results;
      });
    }
    return new Promise<boolean[]>((resolve, reject) => {
      this.#pending.push({ items, resolve, reject });
    });
  };

  get waiting(): number {
    return this.#pending.length;
  }

  /** Stores the oldest batch still waiting. */
  async succeed(): Promise<void> {
    const next = this.#pending.shift();
    if (!next) throw new Error("no batch is waiting");
    this.inFlight--;
    next.resolve(next.items.map((item) => !item.startsWith("dup")));
    await settle();
  }

  /** Fails the oldest batch still waiting. */
  async fail(err: unknown): Promise<void> {
    const next = this.#pending.shift();
    if (!next) throw new Error("no batch is waiting");
    this.inFlight--;
    next.reject(err);
    await settle();
  }
}

/** Lets every pending promise callback run (setImmediate is not faked below). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Observes a promise without waiting for it, and without leaving a rejection unhandled. */
function track<T>(promise: Promise<T>) {
  const state: { status: "pending" | "fulfilled" | "rejected"; value?: T; error?: unknown } = { status: "pending" };
  promise.then(
    (value) => Object.assign(state, { status: "fulfilled", value }),
    (error) => Object.assign(state, { status: "rejected", error }),
  );
  return state;
}

/** Submits and waits for admission; returns the tracked commit promise. */
async function submitted(batcher: Batcher<string>, items: string[]) {
  const { committed } = await batcher.submit(items);
  return track(committed);
}

/** Every test item weighs one byte, so byte limits read as item counts. */
const ONE = () => 1;
const options = (o: Partial<BatcherOptions> = {}): BatcherOptions => ({
  maxBatch: 100,
  maxBatchBytes: 1_000_000,
  maxDelayMs: 100,
  maxOutstandingBytes: 1000,
  ...o,
});
const items = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Batcher: flush by size", () => {
  it("cuts batches at submit boundaries, never above maxBatch unless one submit alone is larger", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 3, maxDelayMs: 1000 }), store.commit, ONE);
    const a = await submitted(batcher, ["a0", "a1"]);
    const b = await submitted(batcher, ["b0", "b1"]);
    const big = await submitted(batcher, items("c", 5));
    await settle();
    expect(store.batches).toEqual([["a0", "a1"]]);
    await store.succeed();
    expect(store.batches[1]).toEqual(["b0", "b1"]);
    await store.succeed();
    expect(store.batches[2]).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    await store.succeed();
    expect([a.status, b.status, big.status]).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    expect(big.value).toHaveLength(5);
  });

  it("commits once maxBatchBytes wait, however few items that is", async () => {
    const store = new Store("auto");
    const weigh = (item: string) => (item.startsWith("heavy") ? 600 : 1);
    const batcher = new Batcher(
      options({ maxBatch: 100, maxBatchBytes: 1000, maxDelayMs: 60_000, maxOutstandingBytes: 10_000 }),
      store.commit,
      weigh,
    );
    await submitted(batcher, ["heavy-1"]);
    await settle();
    expect(store.batches).toEqual([]);
    await submitted(batcher, ["heavy-2"]);
    await settle();
    // 1,200 bytes wait: a batch goes at once, cut before it would pass 1,000;
    // the rest waits for more company or for its age, as usual.
    expect(store.batches).toEqual([["heavy-1"]]);
  });

  it("commits a full batch without waiting for the timer", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 2, maxDelayMs: 60_000 }), store.commit, ONE);
    const first = await submitted(batcher, ["a"]);
    await settle();
    expect(store.batches).toEqual([]);
    const second = await submitted(batcher, ["b"]);
    await settle();
    expect(store.batches).toEqual([["a", "b"]]);
    expect(first.status).toBe("fulfilled");
    expect(second.status).toBe("fulfilled");
  });

  it("gathers items from different submits into one batch", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 4 }), store.commit, ONE);
    await submitted(batcher, ["a", "b"]);
    await submitted(batcher, ["c"]);
    await submitted(batcher, ["d"]);
    await settle();
    expect(store.batches[0]).toEqual(["a", "b", "c", "d"]);
  });
});

/** Starts and commits one batch, so the next one is paced by it. */
async function afterABatch(batcher: Batcher<string>, store: Store) {
  await submitted(batcher, ["first"]);
  await vi.advanceTimersByTimeAsync(5);
  await settle();
  expect(store.batches).toEqual([["first"]]);
}

describe("Batcher: flush by age, batches paced by maxDelayMs", () => {
  it("commits a lone item after a few milliseconds when no batch has started for maxDelayMs", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 100, maxDelayMs: 100 }), store.commit, ONE);
    const c = await submitted(batcher, ["a"]);
    await settle();
    expect(store.batches).toEqual([]);
    // Another request that arrives meanwhile shares its batch.
    await vi.advanceTimersByTimeAsync(3);
    await submitted(batcher, ["b"]);
    await vi.advanceTimersByTimeAsync(2);
    await settle();
    expect(store.batches).toEqual([["a", "b"]]);
    expect(c).toMatchObject({ status: "fulfilled", value: [true] });
  });

  it("starts the next batch no sooner than maxDelayMs after the last one started", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 100, maxDelayMs: 100 }), store.commit, ONE);
    await afterABatch(batcher, store); // started at 5 ms
    await vi.advanceTimersByTimeAsync(25);
    const c = await submitted(batcher, ["a"]);
    await vi.advanceTimersByTimeAsync(74);
    await settle();
    expect(store.batches).toHaveLength(1);
    expect(c.status).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(store.batches).toEqual([["first"], ["a"]]);
    expect(c).toMatchObject({ status: "fulfilled", value: [true] });
  });

  it("measures age from the oldest waiting item", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 100, maxDelayMs: 100 }), store.commit, ONE);
    await afterABatch(batcher, store);
    await submitted(batcher, ["old"]);
    await vi.advanceTimersByTimeAsync(60);
    await submitted(batcher, ["young"]);
    await vi.advanceTimersByTimeAsync(39);
    await settle();
    expect(store.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(store.batches).toEqual([["first"], ["old", "young"]]);
  });

  it("lets a submit with a longer maxDelayMs wait that long when nothing else is queued", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxDelayMs: 100 }), store.commit, ONE);
    await batcher.submit(["lazy"], { maxDelayMs: 1000 });
    await vi.advanceTimersByTimeAsync(999);
    await settle();
    expect(store.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(store.batches).toEqual([["lazy"]]);
  });

  it("sends a waiting lazy submit along with the next batch that is due, in arrival order", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxDelayMs: 100 }), store.commit, ONE);
    await batcher.submit(["lazy"], { maxDelayMs: 1000 });
    await vi.advanceTimersByTimeAsync(300);
    await submitted(batcher, ["eager"]);
    await vi.advanceTimersByTimeAsync(4);
    await settle();
    expect(store.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(store.batches).toEqual([["lazy", "eager"]]);
    // Nothing is left to flush at the lazy submit's own due time.
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    expect(store.batches).toHaveLength(1);
  });

  it("commits items that aged while another batch was in flight as soon as it finishes", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 2, maxDelayMs: 100 }), store.commit, ONE);
    await submitted(batcher, ["a", "b"]);
    await settle();
    expect(store.batches).toHaveLength(1);
    const late = await submitted(batcher, ["c"]);
    await vi.advanceTimersByTimeAsync(500);
    await settle();
    expect(store.batches).toHaveLength(1); // still one commit at a time
    await store.succeed();
    expect(store.batches).toEqual([["a", "b"], ["c"]]);
    await store.succeed();
    expect(late.status).toBe("fulfilled");
  });
});

describe("Batcher: one commit at a time", () => {
  it("starts the next batch only after the previous commit finished", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 2 }), store.commit, ONE);
    const c = await submitted(batcher, ["x0", "x1"]);
    const d = await submitted(batcher, ["x2", "x3"]);
    const e = await submitted(batcher, ["x4", "x5"]);
    await settle();
    expect(store.batches).toEqual([["x0", "x1"]]);
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    expect(store.batches).toHaveLength(1);
    await store.succeed();
    expect(store.batches).toHaveLength(2);
    await store.succeed();
    expect(store.batches).toHaveLength(3);
    await store.succeed();
    expect(store.maxInFlight).toBe(1);
    expect([c.status, d.status, e.status]).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
  });
});

describe("Batcher: results", () => {
  it("resolves each submit with its own items' results, in order", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 5 }), store.commit, ONE);
    const one = await submitted(batcher, ["a", "dup-b"]);
    const two = await submitted(batcher, ["dup-c", "d", "e"]);
    await settle();
    expect(store.batches).toEqual([["a", "dup-b", "dup-c", "d", "e"]]);
    expect(one.value).toEqual([true, false]);
    expect(two.value).toEqual([false, true, true]);
  });

  it("never splits a submit: one that does not fit waits whole for the next batch", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 3 }), store.commit, ONE);
    const first = await submitted(batcher, ["a", "b"]);
    const whole = await submitted(batcher, ["dup-c", "d", "e", "dup-f"]);
    await settle();
    expect(store.batches).toEqual([["a", "b"]]);
    await store.succeed();
    expect(first).toMatchObject({ status: "fulfilled", value: [true, true] });
    expect(whole.status).toBe("pending");
    expect(store.batches[1]).toEqual(["dup-c", "d", "e", "dup-f"]);
    await store.succeed();
    expect(whole).toMatchObject({ status: "fulfilled", value: [false, true, true, false] });
  });

  it("resolves an empty submit at once without committing anything", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options(), store.commit, ONE);
    const { committed } = await batcher.submit([]);
    await expect(committed).resolves.toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(store.batches).toEqual([]);
  });
});

describe("Batcher: backpressure", () => {
  it("holds a submit that would exceed maxOutstanding until a commit releases room", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 3, maxOutstandingBytes: 4 }), store.commit, ONE);
    await submitted(batcher, ["a", "b", "c"]);
    expect(batcher.outstandingBytes).toBe(3);
    const admission = track(batcher.submit(["d", "e"]));
    await settle();
    expect(admission.status).toBe("pending");
    expect(batcher.outstandingBytes).toBe(3);
    await store.succeed();
    expect(admission.status).toBe("fulfilled");
    expect(batcher.outstandingBytes).toBe(2);
  });

  it("admits a submit that exactly fills maxOutstanding at once", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 10, maxOutstandingBytes: 4 }), store.commit, ONE);
    await submitted(batcher, ["a", "b"]);
    const admission = track(batcher.submit(["c", "d"]));
    await settle();
    expect(admission.status).toBe("fulfilled");
    expect(batcher.outstandingBytes).toBe(4);
  });

  it("admits waiting submits in FIFO order, even when a later one would fit sooner", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 3, maxOutstandingBytes: 4 }), store.commit, ONE);
    await submitted(batcher, ["a", "b", "c"]); // outstanding 3
    const order: string[] = [];
    const big = track(batcher.submit(["big1", "big2"]).then((r) => (order.push("big"), r)));
    const small = track(batcher.submit(["small"]).then((r) => (order.push("small"), r))); // 3 + 1 fits, but big is first
    await settle();
    expect(big.status).toBe("pending");
    expect(small.status).toBe("pending");
    await store.succeed(); // releases 3
    expect(order).toEqual(["big", "small"]);
    expect(batcher.outstandingBytes).toBe(3);
  });

  it("releases room as each batch commits, admitting waiters batch by batch", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 2, maxOutstandingBytes: 4 }), store.commit, ONE);
    await submitted(batcher, ["a", "b"]);
    await submitted(batcher, ["c", "d"]);
    const waiter = track(batcher.submit(["e", "f", "g"]));
    await settle();
    await store.succeed(); // a, b: outstanding 2, still no room for 3
    expect(waiter.status).toBe("pending");
    await store.succeed(); // c, d: outstanding 0
    expect(waiter.status).toBe("fulfilled");
    expect(batcher.outstandingBytes).toBe(3);
  });

  it("bounds the waiting room too: past maxWaitingBytes a submit is refused at once, RESOURCE_EXHAUSTED with a retry-after", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 4, maxOutstandingBytes: 4, maxWaitingBytes: 4 }), store.commit, ONE);
    await submitted(batcher, items("a", 4));
    // The first waiter always waits, however large: it is what the room is for.
    const first = track(batcher.submit(items("b", 3)));
    const second = track(batcher.submit(items("c", 1)));
    const refused = track(batcher.submit(items("d", 1)));
    await settle();
    expect([first.status, second.status]).toEqual(["pending", "pending"]);
    expect(refused.status).toBe("rejected");
    expect(refused.error).toBeInstanceOf(AuditlogError);
    expect(refused.error).toMatchObject({ kind: "resource_exhausted", retryAfterMs: 1000, message: expect.stringMatching(/2 requests already wait for room; nothing of this one is stored/) });
    await store.succeed();
    expect([first.status, second.status]).toEqual(["fulfilled", "fulfilled"]);
    await store.succeed();
    // Room again: a submit is admitted, not refused.
    const later = track(batcher.submit(items("e", 1)));
    await settle();
    expect(later.status).toBe("fulfilled");
  });

  it("admits the audit events of reads at once, past the bound and the waiting room (a read fails without its record)", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 4, maxOutstandingBytes: 4, maxWaitingBytes: 1 }), store.commit, ONE);
    await submitted(batcher, items("a", 4));
    const waiting = track(batcher.submit(items("b", 2)));
    const audit = track(batcher.submit(items("r", 1), { pastTheBound: true }));
    await settle();
    expect([waiting.status, audit.status]).toEqual(["pending", "fulfilled"]);
    expect(batcher.outstandingBytes).toBe(5);
  });

  it("releases room when a commit fails", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 2, maxOutstandingBytes: 2 }), store.commit, ONE);
    const c = await submitted(batcher, ["a", "b"]);
    const waiter = track(batcher.submit(["c"]));
    await settle();
    await store.fail(new Error("disk full"));
    expect(c.status).toBe("rejected");
    expect(waiter.status).toBe("fulfilled");
  });
});

describe("Batcher: commit failure", () => {
  it("rejects the submits in the failed batch with the commit's error", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 2 }), store.commit, ONE);
    const failure = new Error("storage did not accept the events");
    store.failNext = failure;
    const c = await submitted(batcher, ["a", "b"]);
    await settle();
    expect(c.status).toBe("rejected");
    expect(c.error).toBe(failure);
    expect(batcher.outstandingBytes).toBe(0);
  });

  it("keeps working for later submits", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 2 }), store.commit, ONE);
    store.failNext = new Error("boom");
    const failed = await submitted(batcher, ["a", "b"]);
    await settle();
    const later = await submitted(batcher, ["c", "dup-d"]);
    await settle();
    expect(failed.status).toBe("rejected");
    expect(later).toMatchObject({ status: "fulfilled", value: [true, false] });
  });

  it("does not affect submits committed in another batch", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 2 }), store.commit, ONE);
    const first = await submitted(batcher, ["a", "b"]);
    const second = await submitted(batcher, ["c"]);
    await settle();
    await store.fail(new Error("boom"));
    await vi.advanceTimersByTimeAsync(100);
    await settle();
    await store.succeed();
    expect(first.status).toBe("rejected");
    expect(second).toMatchObject({ status: "fulfilled", value: [true] });
  });

  it("fails a large submit whole, in its one batch: a request is all-or-nothing", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 2 }), store.commit, ONE);
    const large = await submitted(batcher, ["a", "b", "c"]);
    await settle();
    expect(store.batches).toEqual([["a", "b", "c"]]);
    await store.fail(new Error("lost"));
    expect(large.status).toBe("rejected");
    expect((large.error as Error).message).toBe("lost");
  });
});

describe("Batcher: flushPromptly", () => {
  it("commits waiting items without waiting for their age", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 100, maxDelayMs: 60_000 }), store.commit, ONE);
    const c = await submitted(batcher, ["a"]);
    await settle();
    expect(store.batches).toEqual([]);
    batcher.flushPromptly();
    await settle();
    expect(store.batches).toEqual([["a"]]);
    expect(c.status).toBe("fulfilled");
  });

  it("keeps committing later items promptly", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 100, maxDelayMs: 60_000 }), store.commit, ONE);
    batcher.flushPromptly();
    const c = await submitted(batcher, ["b"]);
    await settle();
    expect(store.batches).toEqual([["b"]]);
    expect(c.status).toBe("fulfilled");
  });
});

describe("Batcher: close", () => {
  it("commits everything admitted before resolving", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 2, maxDelayMs: 60_000 }), store.commit, ONE);
    const one = await submitted(batcher, ["a"]);
    await settle();
    const two = await submitted(batcher, ["b", "c"]);
    const three = await submitted(batcher, ["d", "e"]);
    await batcher.close();
    expect(store.batches).toEqual([["a"], ["b", "c"], ["d", "e"]]);
    await settle();
    expect([one.status, two.status, three.status]).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    expect(batcher.outstandingBytes).toBe(0);
  });

  it("waits for a commit already in flight", async () => {
    const store = new Store("manual");
    const batcher = new Batcher(options({ maxBatch: 1 }), store.commit, ONE);
    const c = await submitted(batcher, ["a"]);
    const d = await submitted(batcher, ["b"]);
    await settle();
    const closed = track(batcher.close());
    await settle();
    expect(closed.status).toBe("pending");
    await store.succeed();
    expect(closed.status).toBe("pending");
    await store.succeed();
    expect(closed.status).toBe("fulfilled");
    expect([c.status, d.status]).toEqual(["fulfilled", "fulfilled"]);
  });

  it("makes later submits reject with an unavailable AuditlogError", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options(), store.commit, ONE);
    await batcher.close();
    const err = await batcher.submit(["late"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuditlogError);
    expect((err as AuditlogError).kind).toBe("unavailable");
    expect((err as AuditlogError).message).toContain("shutting down");
    expect(store.batches).toEqual([]);
  });

  it("rejects submits still waiting for room, and commits the admitted ones", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options({ maxBatch: 10, maxDelayMs: 60_000, maxOutstandingBytes: 2 }), store.commit, ONE);
    const admitted = await submitted(batcher, ["a", "b"]);
    const waiting = track(batcher.submit(["c"]));
    await settle();
    expect(waiting.status).toBe("pending");
    await batcher.close();
    await settle();
    expect(waiting.status).toBe("rejected");
    expect(waiting.error).toBeInstanceOf(AuditlogError);
    expect((waiting.error as AuditlogError).kind).toBe("unavailable");
    expect(admitted).toMatchObject({ status: "fulfilled", value: [true, true] });
    expect(store.batches).toEqual([["a", "b"]]);
    expect(batcher.outstandingBytes).toBe(0);
  });

  it("resolves at once when nothing is waiting", async () => {
    const store = new Store("auto");
    const batcher = new Batcher(options(), store.commit, ONE);
    await expect(batcher.close()).resolves.toBeUndefined();
    expect(store.batches).toEqual([]);
  });
});

describe("Batcher: a commit step that throws synchronously", () => {
  it("rejects that batch's callers and keeps committing later batches", async () => {
    let calls = 0;
    const committed: string[][] = [];
    const batcher = new Batcher<string>(
      options({ maxBatch: 1, maxDelayMs: 1 }),
      (batch) => {
        if (calls++ === 0) throw new Error("boom");
        committed.push(batch);
        return Promise.resolve(batch.map(() => true));
      },
      ONE,
    );
    const first = await batcher.submit(["a"]);
    await expect(first.committed).rejects.toThrow("boom");
    const second = await batcher.submit(["b"]);
    await expect(second.committed).resolves.toEqual([true]);
    expect(committed).toEqual([["b"]]);
    expect(batcher.outstandingBytes).toBe(0);
    await batcher.close();
  });
});
