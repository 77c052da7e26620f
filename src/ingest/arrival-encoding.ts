import { canonicalState } from "../integrity/canonical.ts";
import { jsonBytesWriter } from "../wire/json-bytes.ts";
import { dateTime64, outcomeName, severityName, type ArrivalEncoding, type EventRecord } from "../store/event-row.ts";

/**
 * Both encodings an event gets on arrival (`EncodedRecord.encoded`), made in one
 * pass: the middle of its canonical form (`canonicalBody`,
 * src/integrity/canonical.ts) and the head of its row (`insertRowHead`,
 * src/store/event-row.ts). The two share their longest run of fields, `type`
 * to `message`, which is escaped once here, and the attributes, serialized
 * once in canonical (sorted) order: a ClickHouse Map keeps whatever order it
 * is given, and no reader depends on it. Escaping and serializing each of
 * these twice was about a third of the arrival encoding's cost, most of it
 * garbage.
 *
 * Both are written as UTF-8, with no strings made on the way
 * (src/wire/json-bytes.ts), into one buffer outside the JavaScript heap:
 * a queued event waits for its commit across several scavenges, and each
 * one copied its two strings (about 1 KB) while it waited.
 *
 * test/unit/arrival-encoding.test.ts checks that the canonical body is
 * byte-identical to `canonicalBody` and the row holds the same values as
 * `insertRowHead`'s.
 */
export function arrivalEncoding(r: EventRecord): ArrivalEncoding {
  const w = writer;
  // From the start, even if an earlier call threw half-way.
  w.clear();
  w.jsonString(r.id);
  const idEnd = w.at;
  w.ascii(`,${r.timeUs},`);
  const offsetAt = w.at;
  w.ascii(String(r.utcOffsetMinutes));
  const offsetEnd = w.at;
  w.ascii(",");
  const sharedAt = w.at;
  for (const text of [
    r.type, r.action, outcomeName(r.outcome), severityName(r.severity),
    r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp, r.actorUserAgent,
    r.resourceType, r.resourceId, r.resourceName, r.source, r.requestId, r.message,
  ]) {
    w.jsonString(text);
    w.ascii(",");
  }
  const keys = sortedKeys(r.attributes);
  w.ascii("{");
  keys.forEach((key, i) => {
    if (i > 0) w.ascii(",");
    w.jsonString(key);
    w.ascii(":");
    w.jsonString(r.attributes[key]);
  });
  w.ascii("}");
  const sharedEnd = w.at;
  w.ascii(",");
  w.utf8(canonicalState(r.before));
  w.ascii(",");
  w.utf8(canonicalState(r.after));
  const rowHeadAt = w.at;
  w.ascii("[");
  w.jsonString(r.tenantId);
  w.ascii(",");
  w.again(0, idEnd);
  w.ascii(`,"${dateTime64(r.timeUs)}",`);
  w.again(offsetAt, offsetEnd);
  w.ascii(",");
  w.again(sharedAt, sharedEnd);
  w.ascii(",");
  w.jsonString(r.before);
  w.ascii(",");
  w.jsonString(r.after);
  return { utf8: w.take(), rowHeadAt };
}

/**
 * JCS orders an object's keys by UTF-16 code units, as `<` compares
 * strings. An insertion sort of the few keys an event has: Array#sort made
 * about a tenth of the ingest path's garbage.
 */
function sortedKeys(map: Record<string, string>): string[] {
  const keys = Object.keys(map);
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i];
    let j = i - 1;
    for (; j >= 0 && keys[j] > key; j--) keys[j + 1] = keys[j];
    keys[j + 1] = key;
  }
  return keys;
}

/** Scratch space, reused by every call (each one is synchronous, start to `take`). */
const writer = jsonBytesWriter();
