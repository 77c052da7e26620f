import { canonicalMap, canonicalState } from "../integrity/canonical.ts";
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
 * Both are written as UTF-8 into one buffer, outside the JavaScript heap:
 * a queued event waits for its commit across several scavenges, and each
 * one copied its two strings (about 1 KB) while it waited.
 *
 * test/unit/arrival-encoding.test.ts checks that the canonical body is
 * byte-identical to `canonicalBody` and the row holds the same values as
 * `insertRowHead`'s.
 */
export function arrivalEncoding(r: EventRecord): ArrivalEncoding {
  const shared = JSON.stringify([
    r.type, r.action, outcomeName(r.outcome), severityName(r.severity),
    r.actorId, r.actorType, r.actorName, r.actorSessionId, r.actorIp, r.actorUserAgent,
    r.resourceType, r.resourceId, r.resourceName, r.source, r.requestId, r.message,
  ]).slice(1, -1);
  const id = JSON.stringify(r.id);
  const attributes = canonicalMap(r.attributes);
  const canonicalBody = `${id},${r.timeUs},${r.utcOffsetMinutes},${shared},${attributes},${canonicalState(r.before)},${canonicalState(r.after)}`;
  const rowHead = `[${JSON.stringify(r.tenantId)},${id},"${dateTime64(r.timeUs)}",${r.utcOffsetMinutes},${shared},${attributes},${JSON.stringify(r.before)},${JSON.stringify(r.after)}`;
  const rowHeadAt = Buffer.byteLength(canonicalBody);
  const utf8 = Buffer.allocUnsafe(rowHeadAt + Buffer.byteLength(rowHead));
  utf8.write(canonicalBody, 0);
  utf8.write(rowHead, rowHeadAt);
  return { utf8, rowHeadAt };
}
