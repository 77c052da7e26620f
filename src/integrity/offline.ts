import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { fromJson } from "@bufbuild/protobuf";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";
import { recordFromEvent, type EventRecord } from "../store/event-row.ts";
import { microsFromTimestamp } from "../time.ts";
import { checkpointVerifier } from "./signing-key.ts";
import { ChainVerifier, type ChainReport } from "./verify.ts";

export interface OfflineResult {
  reports: ChainReport[];
  /** Events without a chain (stored with chaining switched off): nothing to verify them against. */
  unchained: number;
}

/**
 * Verifies an NDJSON export with nothing but the file and the public key: no
 * server, no database. Each chain in the file is checked from its first event
 * present: hashes, links, seq continuity, and the signature of every
 * checkpoint the export carries. An export cut by a time range starts
 * mid-chain; that is not a problem. One that was filtered by anything else
 * has holes, and they are reported.
 */
export async function verifyExport(file: string, publicKeyPem: string): Promise<OfflineResult> {
  const key = checkpointVerifier(publicKeyPem);
  const chains = new Map<string, { record: EventRecord; receivedAtUs: number }[]>();
  let unchained = 0;
  let lineNo = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    lineNo++;
    if (!line.trim()) continue;
    let record: EventRecord;
    let receivedAtUs: number;
    try {
      const event = fromJson(EventSchema, JSON.parse(line));
      record = recordFromEvent(event);
      receivedAtUs = event.receivedAt ? microsFromTimestamp(event.receivedAt) : 0;
    } catch (err) {
      throw new Error(`${file}:${lineNo}: not an Event in protobuf JSON (${(err as Error).message})`);
    }
    if (!record.link) {
      unchained++;
      continue;
    }
    const id = `${record.tenantId}\u0000${record.link.chainId}`;
    const list = chains.get(id) ?? [];
    list.push({ record, receivedAtUs });
    chains.set(id, list);
  }
  const reports = [...chains.values()].map((events) => {
    events.sort((a, b) => a.record.link!.seq - b.record.link!.seq);
    const { tenantId, link } = events[0].record;
    const verifier = new ChainVerifier(tenantId, link!.chainId, key);
    for (const e of events) verifier.add(e.record, e.receivedAtUs);
    return verifier.finish();
  });
  reports.sort((a, b) => (a.tenantId + a.chainId < b.tenantId + b.chainId ? -1 : 1));
  return { reports, unchained };
}

/** One line per chain, for people. */
export function describe(result: OfflineResult): string {
  const lines = result.reports.map((r) => {
    const where = `${r.tenantId} / ${r.chainId}: seq ${r.firstSeq}..${r.lastSeq}, ${r.eventsChecked} events, ${r.checkpointsChecked} signed checkpoints`;
    if (!r.problem) return `ok      ${where}`;
    const at = r.problem.eventId ? ` (event ${r.problem.eventId})` : "";
    return `FAILED  ${where}\n        ${r.problem.kind} at seq ${r.problem.seq}${at}: ${r.problem.detail}`;
  });
  if (result.unchained > 0) lines.push(`note    ${result.unchained} events carry no chain (stored with AUDITLOG_HASH_CHAIN=false); not verified`);
  if (result.reports.length === 0) lines.push("no chained events in the export");
  return lines.join("\n");
}
