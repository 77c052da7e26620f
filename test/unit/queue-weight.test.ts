import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";
import { realisticEvent } from "../../bench/realistic-events.ts";
import { loadConfig } from "../../src/config.ts";
import { encodeOnArrival } from "../../src/ingest/commit.ts";
import { decodeEvent } from "../../src/ingest/event-wire.ts";
import { validateEvent } from "../../src/ingest/validate.ts";
import type { EncodedRecord } from "../../src/store/event-row.ts";

/**
 * AUDITLOG_QUEUE_MAX_BYTES bounds the memory of events accepted but not yet
 * stored. The bound is only as honest as each event's weight: these tests
 * queue events the way the Ingest handler does (decoded from the wire,
 * validated, encoded on arrival) and compare the memory they hold (on the
 * JavaScript heap, and in buffers outside it: the encodings) with the sum of
 * their weights.
 */
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const limits = loadConfig({ AUDITLOG_DATA_DIR: "/tmp/unused" }).ingest.limits;
const N = 20_000;
const heapInUse = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

function heldPerEvent(make: (i: number) => Parameters<typeof create<typeof EventSchema>>[1]) {
  const wires = Array.from({ length: N }, (_, i) => toBinary(EventSchema, create(EventSchema, make(i))));
  const now = Date.now() * 1000;
  const before = heapInUse();
  const queued: { record: EncodedRecord; bytes: number }[] = [];
  for (const wire of wires) {
    const result = validateEvent(decodeEvent(wire), "tenant-1", now, limits);
    if (!result.ok) throw new Error(result.invalid.reason);
    const { record, weight } = encodeOnArrival(result.record);
    queued.push({ record, bytes: weight });
  }
  // Outside the heap: the memory of the buffers the encodings are in.
  const buffers = new Set(queued.map((q) => q.record.encoded.utf8.buffer));
  const outside = [...buffers].reduce((n, b) => n + b.byteLength, 0);
  const held = (heapInUse() - before + outside) / N;
  const weight = queued.reduce((n, q) => n + q.bytes, 0) / N;
  return { held, weight };
}

describe("queued event weight", () => {
  const shapes: { shape: string; make: (i: number) => Parameters<typeof create<typeof EventSchema>>[1] }[] = [
    { shape: "realistic (8 attributes, ~470 bytes)", make: (i) => realisticEvent(i) },
    { shape: "minimal", make: (i) => ({ type: "t.x", action: "CREATE", actor: { id: `u-${i}` } }) },
    {
      shape: "non-Latin text (two bytes per character in memory)",
      make: (i) => ({ type: "t.x", action: "UPDATE", actor: { id: `u-${i}` }, message: `Заказ ${i} оплачен картой клиента`.repeat(8) }),
    },
  ];
  it.each(shapes)("counts what a queued $shape event holds", ({ make }) => {
    const { held, weight } = heldPerEvent(make);
    // Never undercount by more than a quarter (the bound must bound), nor
    // overcount 2× (the queue would hold far fewer events than it could).
    expect(weight).toBeGreaterThanOrEqual(held * 0.75);
    expect(weight).toBeLessThanOrEqual(held * 2);
  });
});
