import { describe, expect, it, afterEach } from "vitest";
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import { encodeOnArrival, type PendingEvent } from "../../src/ingest/commit.ts";
import type { EventRecord } from "../../src/store/event-row.ts";
import { TailClosed, TailHub } from "../../src/tail/hub.ts";
import { compareUtf8, comparePositions, decodeCursor, encodeCursor, startPosition } from "../../src/tail/position.ts";

const record = (tenantId: string, id: string): EventRecord => ({
  tenantId, id, timeUs: 0, utcOffsetMinutes: 0, type: "t", action: "VIEW", outcome: Outcome.SUCCESS, severity: Severity.INFO,
  actorId: "a", actorType: "", actorName: "", actorSessionId: "", actorIp: "", actorUserAgent: "", resourceType: "",
  resourceId: "", resourceName: "", source: "", requestId: "", message: "", attributes: {}, before: "", after: "",
});
const pending = (tenantId: string, id: string, bytes = 100): PendingEvent => ({ record: encodeOnArrival(record(tenantId, id)).record, clientId: true, bytes, weight: bytes });
const never = new AbortController().signal;

describe("compareUtf8: the order ClickHouse sorts String columns in", () => {
  it.each([
    ["a", "b"],
    ["a", "ab"],
    ["", "a"],
    ["Z", "a"],
    ["\u00e9", "\u4e00"],
    // A supplementary character sorts after U+FFFD in UTF-8, though its UTF-16 surrogate is smaller.
    ["\ufffd", "\u{1F600}"],
    ["\uff21", "\u{10000}"],
  ])("%j < %j, like their UTF-8 bytes", (a, b) => {
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(-1);
    expect(compareUtf8(a, b)).toBeLessThan(0);
    expect(compareUtf8(b, a)).toBeGreaterThan(0);
    expect(compareUtf8(a, a)).toBe(0);
  });

  it("positions order by commit time, then tenant, then id", () => {
    const p = (receivedAtUs: number, tenantId: string, id: string) => ({ receivedAtUs, tenantId, id });
    const sorted = [p(1, "b", "z"), p(2, "", ""), p(2, "a", "9"), p(2, "a", "a"), p(2, "b", "0"), p(3, "a", "a")];
    expect([...sorted].reverse().sort(comparePositions)).toEqual(sorted);
  });
});

describe("tail cursors", () => {
  it("round-trip", () => {
    const p = { receivedAtUs: 1_795_000_000_123_456, tenantId: "acme", id: "évt/1" };
    expect(decodeCursor(encodeCursor(p))).toEqual(p);
  });

  it.each(["", "not base64 json", Buffer.from("[2,1,\"a\",\"b\"]").toString("base64url"), Buffer.from("[1,1.5,\"a\",\"b\"]").toString("base64url"), Buffer.from("{}").toString("base64url")])(
    "refuses %j with a message that says what to pass",
    (cursor) => {
      expect(() => decodeCursor(cursor)).toThrow("cursor is not valid: pass the `cursor` of a tail response unchanged");
    },
  );

  it("a tail starts after a cursor, from a time, or now", () => {
    const p = { receivedAtUs: 5, tenantId: "t", id: "i" };
    expect(startPosition(encodeCursor(p), { seconds: 9n, nanos: 0 } as never)).toEqual(p);
    expect(startPosition("", { seconds: 9n, nanos: 1000 } as never)).toEqual({ receivedAtUs: 9_000_001, tenantId: "", id: "" });
    expect(startPosition("", undefined)).toBeUndefined();
    expect(() => startPosition("", { seconds: 99_999_999_999n, nanos: 0 } as never)).toThrow("since must be a valid time");
  });
});

describe("TailHub and its bounded subscriptions", () => {
  let errors: unknown[] = [];
  /** A committed row whose text cannot be read back (it never happens to rows the server wrote). */
  const unreadable = (tenantId: string): PendingEvent => ({
    record: { tenantId, id: "9", timeUs: 0, encoded: { utf8: Buffer.from("not json"), rowHeadAt: 0 } },
    clientId: true,
    bytes: 1,
    weight: 1,
  });
  /** Published batches are delivered in a task of their own, after the commit step. */
  const delivered = () => new Promise((resolve) => setImmediate(resolve));
  const newHub = () => new TailHub((err) => errors.push(err));
  afterEach(() => {
    expect(errors).toEqual([]);
    errors = [];
  });

  it("delivers matching events of each batch in commit order (tenant, then id)", async () => {
    const hub = newHub();
    const sub = hub.subscribe((r) => r.tenantId !== "x", 10_000);
    hub.publish([pending("b", "1"), pending("x", "0"), pending("a", "2"), pending("a", "10")], 7);
    const d = await sub.next(100, never);
    expect("events" in d && d.events.map((e) => [e.receivedAtUs, e.record.tenantId, e.record.id])).toEqual([
      [7, "a", "10"],
      [7, "a", "2"],
      [7, "b", "1"],
    ]);
  });

  it("an overflowing queue keeps what it holds, counts what it drops, and reports the gap where it is", async () => {
    const hub = newHub();
    const sub = hub.subscribe(() => true, 300);
    hub.publish([pending("t", "1"), pending("t", "2"), pending("t", "3")], 1);
    hub.publish([pending("t", "4"), pending("t", "5")], 2);
    const first = await sub.next(2, never);
    expect("events" in first && first.events.map((e) => e.record.id)).toEqual(["1", "2"]);
    // Room again, but events stay dropped until the gap has been reported.
    hub.publish([pending("t", "6")], 3);
    await delivered();
    const second = await sub.next(10, never);
    expect("events" in second && second.events.map((e) => e.record.id)).toEqual(["3"]);
    expect(await sub.next(10, never)).toEqual({ skipped: 3 });
    hub.publish([pending("t", "7")], 4);
    const third = await sub.next(10, never);
    expect("events" in third && third.events.map((e) => e.record.id)).toEqual(["7"]);
  });

  it("rebuilds only the events a subscriber's tenant scope can see", async () => {
    const hub = newHub();
    const sub = hub.subscribe((r) => r.tenantId === "a", 10_000, "a");
    // Another tenant's row is never parsed for a tail of tenant a (a broken one would throw here).
    hub.publish([pending("a", "1"), unreadable("b")], 5);
    const d = await sub.next(10, never);
    expect("events" in d && d.events.map((e) => e.record.id)).toEqual(["1"]);
  });

  it("hands a batch to the subscribers of the moment it is published, and reads its rows after the commit step", async () => {
    const hub = newHub();
    const early = hub.subscribe(() => true, 10_000);
    // A row that cannot be read: publishing (in the commit step) does not read it.
    expect(() => hub.publish([pending("t", "8"), unreadable("t")], 1)).not.toThrow();
    // Subscribed after that insert: this tail finds the batch in storage, not live.
    const later = hub.subscribe(() => true, 10_000);
    hub.publish([pending("t", "10")], 2);
    // The unreadable batch ends the tails it was for, naming why (the tail then
    // names the cursor to resume from storage): no tail goes on past a gap it
    // cannot report. The later one is untouched.
    await expect(early.next(10, never)).rejects.toThrow("a committed batch could not be delivered live");
    expect(await later.next(10, never)).toMatchObject({ events: [{ record: { id: "10" } }] });
    expect(errors).toHaveLength(1);
    errors = [];
  });

  it("closes only the subscription whose filter throws; the others get the batch", async () => {
    const hub = newHub();
    const broken = hub.subscribe(() => {
      throw new TypeError("a filter that cannot be evaluated");
    }, 10_000);
    const healthy = hub.subscribe(() => true, 10_000);
    hub.publish([pending("t", "1")], 1);
    await expect(broken.next(10, never)).rejects.toThrow("a committed batch could not be delivered live");
    expect(await healthy.next(10, never)).toMatchObject({ events: [{ record: { id: "1" } }] });
    expect(errors).toEqual([new TypeError("a filter that cannot be evaluated")]);
    errors = [];
  });

  it("delivers the other batches when the error handler itself throws", async () => {
    const hub = new TailHub(() => {
      throw new Error("the logger failed");
    });
    const sub = hub.subscribe((r) => r.tenantId === "a", 10_000, "a");
    hub.publish([unreadable("a")], 1);
    const other = hub.subscribe((r) => r.tenantId === "a", 10_000, "a");
    hub.publish([pending("a", "2")], 2);
    await expect(sub.next(10, never)).rejects.toBeInstanceOf(TailClosed);
    expect(await other.next(10, never)).toMatchObject({ events: [{ record: { id: "2" } }] });
  });

  it("publishing never waits on a subscriber, and costs nothing without one", async () => {
    const hub = newHub();
    hub.publish([pending("t", "1")], 1);
    hub.subscribe(() => true, 100);
    for (let i = 0; i < 10_000; i++) hub.publish([pending("t", String(i))], i);
    await delivered();
    expect(hub.subscribers).toBe(1);
  });

  it("a waiting consumer wakes up for a new event, an abort, or the server closing every tail", async () => {
    const hub = newHub();
    const sub = hub.subscribe(() => true, 1000);
    const waiting = sub.next(10, never);
    hub.publish([pending("t", "1")], 1);
    expect(await waiting).toMatchObject({ events: [{ record: { id: "1" } }] });

    const abort = new AbortController();
    const aborted = sub.next(10, abort.signal);
    abort.abort(new Error("client left"));
    await expect(aborted).rejects.toThrow("client left");

    const closing = sub.next(10, never);
    hub.closeAll();
    await expect(closing).rejects.toBeInstanceOf(TailClosed);
    expect(hub.subscribers).toBe(0);
  });
});
