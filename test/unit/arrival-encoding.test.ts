import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";
import { mulberry32, realisticEvent } from "../../bench/realistic-events.ts";
import { loadConfig } from "../../src/config.ts";
import { arrivalEncoding } from "../../src/ingest/arrival-encoding.ts";
import { validateEvent } from "../../src/ingest/validate.ts";
import { canonicalBody, canonicalEvent, chainHash, encodedChainHash } from "../../src/integrity/canonical.ts";
import { insertRowHead, recordFromEncoded, type EventRecord } from "../../src/store/event-row.ts";
import { encodeOnArrival } from "../../src/ingest/commit.ts";
import { jsonBytesWriter } from "../../src/wire/json-bytes.ts";

/**
 * The ingest path encodes each event once on arrival (arrivalEncoding); the
 * reference encoders are what verification and the fallback paths use. The
 * canonical form must match byte for byte (hashes depend on it); the row
 * must hold the same values (its attributes may come in another order), and
 * give back the whole record (what a queued event keeps of it).
 */
const limits = loadConfig({ AUDITLOG_DATA_DIR: "/tmp/unused" }).ingest.limits;
const NOW_US = Date.now() * 1000;
// Small, so that long events make it grow.
const scratch = jsonBytesWriter(64);

function record(init: MessageInitShape<typeof EventSchema>): EventRecord {
  const result = validateEvent(create(EventSchema, init), "tenant-ü", NOW_US, limits);
  if (!result.ok) throw new Error(`${result.invalid.field}: ${result.invalid.reason}`);
  return result.record;
}

function checkAgainstReferences(r: EventRecord) {
  const { utf8, rowHeadAt } = arrivalEncoding(r);
  const body = utf8.toString("utf8", 0, rowHeadAt);
  const rowHead = utf8.toString("utf8", rowHeadAt);
  expect(body).toBe(canonicalBody(r));
  // The chain hash of a queued event, made from those bytes, is the hash of its canonical text.
  const queued = encodeOnArrival(r).record;
  const prev = "ab".repeat(32);
  expect(encodedChainHash(prev, queued, 1_795_000_000_000_001, "chain-ü", 42, scratch)).toBe(chainHash(prev, canonicalEvent(r, 1_795_000_000_000_001, "chain-ü", 42)));
  const row = JSON.parse(`${rowHead}]`) as unknown[];
  const reference = JSON.parse(`${insertRowHead(r)}]`) as unknown[];
  expect(row).toEqual(reference);
  // The queue holds only the encodings; the live tail gets the record back from them.
  // (JSON has no -0: an offset of -0 minutes comes back as 0, the same offset.)
  expect(recordFromEncoded(queued)).toEqual({ ...r, utcOffsetMinutes: r.utcOffsetMinutes || 0 });
}

const TEXT = ['plain', 'quotes " and \\ backslash', "line\nbreak\ttab\u0000nul", "ünïcödé 日本語 🎉", "\u2028\u2029", ""];

describe("arrival encoding", () => {
  it("starts from nothing after an encoding that failed half-way (its scratch space is shared)", () => {
    const r = record(realisticEvent(1));
    // Validation never lets such a document through; the encoder must not depend on it.
    expect(() => arrivalEncoding({ ...r, before: "{not json" })).toThrow();
    checkAgainstReferences(r);
  });

  it("equals the reference encoders on 2,000 realistic events", () => {
    for (let n = 0; n < 2000; n++) checkAgainstReferences(record(realisticEvent(n)));
  });

  it("equals them on awkward text, attribute keys that look like indexes, and state documents", () => {
    const random = mulberry32(7);
    for (let n = 0; n < 300; n++) {
      const pick = () => TEXT[Math.floor(random() * TEXT.length)];
      checkAgainstReferences(
        record({
          id: n % 2 ? `id-${n}` : "",
          type: "t.awkward",
          action: "update",
          actor: { id: `a ${pick()}`, name: pick(), userAgent: pick() },
          resource: n % 3 ? { type: "doc", id: pick(), name: pick() } : undefined,
          source: pick(),
          requestId: pick(),
          message: pick() + pick(),
          utcOffsetMinutes: (n % 5) * -60,
          attributes: n % 4 ? { "10": pick(), "9": "nine", b: pick(), a: pick(), "a.b": "x", "0": "zero" } : {},
          before: n % 2 ? { z: 1, a: [pick(), null, true, 1.5], nested: { "2": "two", "10": pick() } } : undefined,
          after: n % 3 ? { status: pick() } : undefined,
        }),
      );
    }
  });
});
