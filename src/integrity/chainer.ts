import type { ClickHouseClient } from "@clickhouse/client";
import type { EncodedRecord } from "../store/event-row.ts";
import { canonicalCheckpoint, encodedChainHash, GENESIS_HASH } from "./canonical.ts";
import type { CheckpointSigner } from "./signing-key.ts";
import { jsonBytesWriter } from "../wire/json-bytes.ts";

interface Head {
  seq: number;
  hash: string;
}

export interface Chainer {
  /**
   * Puts the batch's events on their tenants' chains (this instance's chain
   * of each tenant) and signs each touched head. Returns the step that makes
   * the new heads current: call it once the insert succeeded.
   */
  link(records: EncodedRecord[], receivedAtUs: number): Promise<() => void>;
  /** After a failed insert, whose rows may or may not have landed: re-read the heads before the next batch. */
  forget(): void;
}

/**
 * One chain per tenant and writer instance (`chainId`), continued across
 * restarts from the stored head. The head of every batch carries its signed
 * checkpoint in the same INSERT, so the newest checkpoint of a chain is its
 * head, and finding it reads the small `checkpoints` table only.
 */
export function createChainer(deps: { client: ClickHouseClient; chainId: string; signer: CheckpointSigner }): Chainer {
  let heads = new Map<string, Head>();
  const scratch = jsonBytesWriter();

  /**
   * The stored head of each tenant's chain. The newest checkpoint says where
   * to look, but the events are the truth: the checkpoints table is filled by
   * a materialized view, whose part a crash can leave unwritten while the
   * events' part is on disk (found by `npm run bench:crash`). So the head is
   * the highest seq among the events received since that checkpoint (the
   * newest partitions), or the checkpoint's if it is ahead of them.
   */
  async function loadHeads(tenants: string[]): Promise<void> {
    const signed = await deps.client.query({
      query: `SELECT tenant_id, max(seq) AS head_seq, argMax(head_hash, seq) AS head, toUnixTimestamp64Micro(max(time)) AS time_us
        FROM checkpoints WHERE chain_id = {chain:String} AND tenant_id IN {tenants:Array(String)} GROUP BY tenant_id`,
      query_params: { chain: deps.chainId, tenants },
      format: "JSONEachRow",
    });
    const checkpointed = new Map<string, Head & { timeUs: number }>();
    for (const row of await signed.json<{ tenant_id: string; head_seq: string; head: string; time_us: string }>()) {
      checkpointed.set(row.tenant_id, { seq: Number(row.head_seq), hash: row.head, timeUs: Number(row.time_us) });
    }
    const sinceUs = Math.min(...tenants.map((t) => checkpointed.get(t)?.timeUs ?? 0));
    const stored = await deps.client.query({
      query: `SELECT tenant_id, max(seq) AS head_seq, argMax(hash, seq) AS head FROM events
        WHERE tenant_id IN {tenants:Array(String)} AND chain_id = {chain:String} AND received_at >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')
        GROUP BY tenant_id`,
      query_params: { chain: deps.chainId, tenants, since: sinceUs },
      format: "JSONEachRow",
    });
    const fromEvents = new Map<string, Head>();
    for (const row of await stored.json<{ tenant_id: string; head_seq: string; head: string }>()) {
      fromEvents.set(row.tenant_id, { seq: Number(row.head_seq), hash: row.head });
    }
    for (const t of tenants) {
      const candidates = [fromEvents.get(t), checkpointed.get(t)].filter((h): h is Head => h !== undefined);
      const head = candidates.sort((a, b) => b.seq - a.seq)[0] ?? { seq: 0, hash: GENESIS_HASH };
      heads.set(t, { seq: head.seq, hash: head.hash });
    }
  }

  return {
    async link(records, receivedAtUs) {
      const unknown = [...new Set(records.map((r) => r.tenantId))].filter((t) => !heads.has(t));
      if (unknown.length > 0) await loadHeads(unknown);
      const next = new Map<string, Head & { last: EncodedRecord }>();
      for (const r of records) {
        const head = next.get(r.tenantId) ?? heads.get(r.tenantId)!;
        const seq = head.seq + 1;
        const hash = encodedChainHash(head.hash, r, receivedAtUs, deps.chainId, seq, scratch);
        r.link = { chainId: deps.chainId, seq, prevHash: head.hash, hash };
        next.set(r.tenantId, { seq, hash, last: r });
      }
      for (const [tenantId, { seq, hash, last }] of next) {
        const signed = canonicalCheckpoint({ tenantId, chainId: deps.chainId, seq, headHash: hash, timeUs: receivedAtUs });
        last.link!.checkpoint = { signature: deps.signer.sign(signed), keyId: deps.signer.keyId };
      }
      return () => {
        for (const [tenantId, { seq, hash }] of next) heads.set(tenantId, { seq, hash });
      };
    },
    forget() {
      heads = new Map();
    },
  };
}
