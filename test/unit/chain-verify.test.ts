import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import { canonicalCheckpoint, canonicalEvent, chainHash, GENESIS_HASH, jcs } from "../../src/integrity/canonical.ts";
import { checkpointVerifier, loadSigner } from "../../src/integrity/signing-key.ts";
import { ChainVerifier, type SignedCheckpoint } from "../../src/integrity/verify.ts";
import type { EventRecord } from "../../src/store/event-row.ts";

const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const { signer } = loadSigner(pem, "/nonexistent");
const key = checkpointVerifier(signer.publicKeyPem);
const DAY_US = 86_400_000_000;

const base = (n: number): EventRecord => ({
  tenantId: "t", id: `e${n}`, timeUs: 1_700_000_000_000_000 + n, utcOffsetMinutes: 60, type: "a.b", action: "VIEW",
  outcome: Outcome.SUCCESS, severity: Severity.INFO, actorId: "u", actorType: "", actorName: "", actorSessionId: "", actorIp: "",
  actorUserAgent: "", resourceType: "", resourceId: "", resourceName: "", source: "", requestId: "", message: `m${n}`,
  attributes: { b: "2", a: "1" }, before: n % 2 ? '{"x":[1,{"z":1,"y":2}]}' : "", after: "",
});

/** A chain of `n` events in batches of `per`, each batch at its own time, its last event signed. */
function chain(n: number, per: number, startUs = 1_800_000_000_000_000) {
  const events: { record: EventRecord; receivedAtUs: number }[] = [];
  const checkpoints: SignedCheckpoint[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const receivedAtUs = startUs + Math.ceil(seq / per) * 1000;
    const record = base(seq);
    const hash = chainHash(prev, canonicalEvent(record, receivedAtUs, "c1", seq));
    record.link = { chainId: "c1", seq, prevHash: prev, hash };
    if (seq % per === 0 || seq === n) {
      const cp = { tenantId: "t", chainId: "c1", seq, headHash: hash, timeUs: receivedAtUs };
      const signature = signer.sign(canonicalCheckpoint(cp));
      record.link.checkpoint = { signature, keyId: signer.keyId };
      checkpoints.push({ ...cp, signature, keyId: signer.keyId });
    }
    events.push({ record, receivedAtUs });
    prev = hash;
  }
  return { events, checkpoints };
}

function verify(events: { record: EventRecord; receivedAtUs: number }[], checkpoints: SignedCheckpoint[] = [], nowUs?: number) {
  const v = new ChainVerifier("t", "c1", key, checkpoints, nowUs === undefined ? undefined : { nowUs, retentionDays: 30 });
  for (const e of events) v.add(e.record, e.receivedAtUs);
  return v.finish();
}

describe("canonical form", () => {
  it("is JCS: keys sorted at every depth, no whitespace, same bytes whatever the input order", () => {
    expect(jcs({ b: [1, { d: null, c: "é\n" }], a: "x" })).toBe('{"a":"x","b":[1,{"c":"é\\n","d":null}]}');
    const r = base(1);
    const reordered = { ...r, attributes: { a: "1", b: "2" }, before: '{ "x" : [1, {"y":2, "z":1}] }' };
    expect(canonicalEvent(reordered, 5, "c", 1)).toBe(canonicalEvent(r, 5, "c", 1));
  });

  it("is byte for byte the JCS of the documented field list, also with index-like attribute keys", () => {
    for (const attributes of [{ b: "2", a: "1" }, { "10": "x", "9": "y", a: "z" }, {}] as Record<string, string>[]) {
      const r = { ...base(1), attributes, after: '{"n": 1e3, "s": "\\u00e9"}' };
      const fields = [
        "auditlog.event.v1", r.tenantId, "c", 7, r.id, r.timeUs, r.utcOffsetMinutes, r.type, r.action, "SUCCESS", "INFO",
        r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp, r.actorUserAgent, r.resourceType, r.resourceId,
        r.resourceName, r.source, r.requestId, r.message, attributes, JSON.parse(r.before), JSON.parse(r.after), 5,
      ];
      expect(canonicalEvent(r, 5, "c", 7)).toBe(jcs(fields));
    }
    expect(jcs({ "10": 1, "9": 2, b: 3 })).toBe('{"10":1,"9":2,"b":3}');
  });

  it("covers every stored field", () => {
    const r = base(1);
    const canonical = canonicalEvent(r, 5, "c", 1);
    for (const change of [{ message: "x" }, { actorIp: "1.2.3.4" }, { attributes: { a: "1", b: "3" } }, { severity: Severity.ERROR }, { timeUs: 1 }]) {
      expect(canonicalEvent({ ...r, ...change }, 5, "c", 1)).not.toBe(canonical);
    }
    expect(canonicalEvent(r, 6, "c", 1)).not.toBe(canonical);
    expect(canonicalEvent(r, 5, "c", 2)).not.toBe(canonical);
  });
});

describe("ChainVerifier", () => {
  it("an intact chain verifies, with every checkpoint checked", () => {
    const { events, checkpoints } = chain(25, 10);
    expect(verify(events, checkpoints)).toEqual({
      tenantId: "t", chainId: "c1", firstSeq: 1, lastSeq: 25, eventsChecked: 25, checkpointsChecked: 6, problem: undefined,
    });
  });

  it("locates an altered event", () => {
    const { events, checkpoints } = chain(25, 10);
    events[11].record.message = "nothing happened";
    expect(verify(events, checkpoints).problem).toMatchObject({ kind: "ALTERED", seq: 12, eventId: "e12" });
  });

  it("locates an altered event whose hash was recomputed: the next link breaks", () => {
    const { events } = chain(25, 10);
    const r = events[11].record;
    r.message = "nothing happened";
    r.link!.hash = chainHash(r.link!.prevHash, canonicalEvent(r, events[11].receivedAtUs, "c1", 12));
    expect(verify(events).problem).toMatchObject({ kind: "INSERTED", seq: 13 });
  });

  it("locates a removed event, and removed newest events by the checkpoints", () => {
    const { events, checkpoints } = chain(25, 10);
    expect(verify(events.filter((e) => e.record.link!.seq !== 7), checkpoints).problem).toMatchObject({ kind: "REMOVED", seq: 7 });
    expect(verify(events.slice(0, 20), checkpoints).problem).toMatchObject({ kind: "REMOVED", seq: 21, detail: expect.stringMatching(/names seq 25/) });
  });

  it("locates a second event at one seq", () => {
    const { events } = chain(25, 10);
    const forged = { record: { ...events[14].record, id: "forged", message: "forged" }, receivedAtUs: events[14].receivedAtUs };
    forged.record.link = { ...forged.record.link!, hash: chainHash(forged.record.link!.prevHash, canonicalEvent(forged.record, forged.receivedAtUs, "c1", 15)) };
    expect(verify([...events.slice(0, 15), forged, ...events.slice(15)]).problem).toMatchObject({ kind: "INSERTED", seq: 15, eventId: "forged" });
  });

  it("detects a bad signature and a checkpoint that names another head", () => {
    const { events, checkpoints } = chain(25, 10);
    const forgedSig = [{ ...checkpoints[1], signature: checkpoints[0].signature }];
    expect(verify(events, forgedSig).problem).toMatchObject({ kind: "BAD_SIGNATURE", seq: 20 });
    const other = checkpointVerifier(generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }).toString());
    const v = new ChainVerifier("t", "c1", other);
    for (const e of events) v.add(e.record, e.receivedAtUs);
    expect(v.finish().problem).toMatchObject({ kind: "BAD_SIGNATURE", seq: 10, detail: expect.stringMatching(/was signed by key/) });
    const lying = { tenantId: "t", chainId: "c1", seq: 15, headHash: "f".repeat(64), timeUs: 1 };
    expect(verify(events, [{ ...lying, signature: signer.sign(canonicalCheckpoint(lying)), keyId: signer.keyId }]).problem).toMatchObject({
      kind: "CHECKPOINT_MISMATCH",
      seq: 15,
    });
  });

  it("from the oldest retained checkpoint on: events deleted by retention are fine, a hole at the start is not", () => {
    const startUs = 1_800_000_000_000_000;
    const { events, checkpoints } = chain(25, 10, startUs);
    const afterFirstBatch = events.slice(10);
    // Long after the first batch's retention (30 days) ended: expired, not tampering.
    expect(verify(afterFirstBatch, checkpoints, startUs + 40 * DAY_US).problem).toBeUndefined();
    // Still within it: removed.
    expect(verify(afterFirstBatch, checkpoints, startUs + 5 * DAY_US).problem).toMatchObject({ kind: "REMOVED", seq: 1 });
    // Half a batch gone can never be retention: a batch expires as a whole.
    expect(verify(events.slice(5), checkpoints, startUs + 40 * DAY_US).problem).toMatchObject({ kind: "REMOVED", seq: 1 });
    // Every event expired: nothing to report.
    expect(verify([], checkpoints, startUs + 40 * DAY_US).problem).toBeUndefined();
  });

  it("deleting every event is caught while the newest checkpoint is within retention, however old the first", () => {
    const startUs = 1_800_000_000_000_000;
    const { checkpoints } = chain(30, 10, startUs);
    const newest = checkpoints.at(-1)!;
    newest.timeUs = startUs + 35 * DAY_US;
    newest.signature = signer.sign(canonicalCheckpoint(newest));
    expect(verify([], checkpoints, startUs + 40 * DAY_US).problem).toMatchObject({ kind: "REMOVED", seq: 1 });
  });

  it("events appended after the last signed head are reported for a whole chain, not for a range", () => {
    const startUs = 1_800_000_000_000_000;
    const { events, checkpoints } = chain(20, 10, startUs);
    const extra = base(21);
    const hash = chainHash(events[19].record.link!.hash, canonicalEvent(extra, startUs + 5000, "c1", 21));
    extra.link = { chainId: "c1", seq: 21, prevHash: events[19].record.link!.hash, hash };
    const appended = [...events, { record: extra, receivedAtUs: startUs + 5000 }];
    expect(verify(appended, checkpoints, startUs + DAY_US).problem).toMatchObject({ kind: "INSERTED", seq: 21 });
    expect(verify(appended).problem).toBeUndefined();
  });

  it("a state document that no longer parses is an altered event, not a failure", () => {
    const { events } = chain(5, 10);
    events[2].record.before = "{not json";
    expect(verify(events).problem).toMatchObject({ kind: "ALTERED", seq: 3 });
  });
});
