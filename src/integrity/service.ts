import { create } from "@bufbuild/protobuf";
import type { ClickHouseClient } from "@clickhouse/client";
import type { ServiceImpl } from "@connectrpc/connect";
import { CheckpointSchema } from "../../gen/auditlog/v1/event_pb.js";
import {
  ChainProblemSchema,
  ChainVerificationSchema,
  GetCheckpointResponseSchema,
  GetPublicKeyResponseSchema,
  IntegrityService,
  ProblemKind,
  VerifyChainResponseSchema,
} from "../../gen/auditlog/v1/integrity_pb.js";
import { callerPermitted } from "../auth/context.ts";
import { readScope, type TenantScope } from "../auth/tenant-scope.ts";
import { invalidArgument } from "../errors.ts";
import { filterConditions } from "../query/filter-sql.ts";
import { recordFromRow, SELECT_COLUMNS, type SelectedRow } from "../store/event-row.ts";
import { jsonRows, type QueryStreamer } from "../store/query-stream.ts";
import { nowMicros, storableMicros, TIME_RANGE, timestampFromMicros } from "../time.ts";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { CheckpointSigner } from "./signing-key.ts";
import { checkpointVerifier } from "./signing-key.ts";
import { ChainVerifier, type ChainReport, type SignedCheckpoint } from "./verify.ts";

export interface IntegrityDeps {
  client: ClickHouseClient;
  stream: QueryStreamer;
  signer: CheckpointSigner;
  /** The tenant's retention now; see README, "Tenants", for what a change means to verification. */
  retentionDays: (tenant: string) => number;
}


interface CheckpointRow {
  tenant_id: string;
  chain_id: string;
  seq: string;
  head_hash: string;
  time_us: string;
  signature: string;
  key_id: string;
}

const fromCheckpointRow = (r: CheckpointRow): SignedCheckpoint => ({
  tenantId: r.tenant_id,
  chainId: r.chain_id,
  seq: Number(r.seq),
  headHash: r.head_hash,
  timeUs: Number(r.time_us),
  signature: r.signature,
  keyId: r.key_id,
});

const toCheckpointMessage = (c: SignedCheckpoint) =>
  create(CheckpointSchema, {
    tenantId: c.tenantId,
    chainId: c.chainId,
    seq: BigInt(c.seq),
    headHash: c.headHash,
    time: timestampFromMicros(c.timeUs),
    signature: Buffer.from(c.signature, "base64"),
    keyId: c.keyId,
  });

const PROBLEM_KINDS: Record<string, ProblemKind> = {
  ALTERED: ProblemKind.ALTERED,
  REMOVED: ProblemKind.REMOVED,
  INSERTED: ProblemKind.INSERTED,
  BAD_SIGNATURE: ProblemKind.BAD_SIGNATURE,
  CHECKPOINT_MISMATCH: ProblemKind.CHECKPOINT_MISMATCH,
};

export const toChainVerification = (r: ChainReport) =>
  create(ChainVerificationSchema, {
    tenantId: r.tenantId,
    chainId: r.chainId,
    firstSeq: BigInt(r.firstSeq),
    lastSeq: BigInt(r.lastSeq),
    eventsChecked: BigInt(r.eventsChecked),
    checkpointsChecked: BigInt(r.checkpointsChecked),
    ok: !r.problem,
    problem: r.problem && create(ChainProblemSchema, { ...r.problem, kind: PROBLEM_KINDS[r.problem.kind], seq: BigInt(r.problem.seq) }),
  });

function bound(name: string, ts: Timestamp | undefined): number | undefined {
  if (!ts) return undefined;
  const us = storableMicros(ts);
  if (us === undefined) throw invalidArgument(`${name} must be a valid time ${TIME_RANGE}`);
  return us;
}

/**
 * Conditions for one read of `events` or `checkpoints` (both carry tenant_id
 * and chain_id): the caller's tenant predicate first, as for every read.
 */
function chainConditions(scope: TenantScope, chainId: string, timeColumn: string, range: { start?: number; end?: number }) {
  const where = filterConditions(scope, undefined);
  if (chainId) where.add(`chain_id = ${where.param("String", chainId)}`);
  else where.add("chain_id != ''");
  if (range.start !== undefined) where.add(`${timeColumn} >= fromUnixTimestamp64Micro(${where.param("Int64", range.start)}, 'UTC')`);
  if (range.end !== undefined) where.add(`${timeColumn} < fromUnixTimestamp64Micro(${where.param("Int64", range.end)}, 'UTC')`);
  return where;
}

export function integrityService(deps: IntegrityDeps): ServiceImpl<typeof IntegrityService> {
  const key = checkpointVerifier(deps.signer.publicKeyPem);

  async function chainsOf(scope: TenantScope, chainId: string): Promise<{ tenantId: string; chainId: string }[]> {
    const found = new Map<string, { tenantId: string; chainId: string }>();
    for (const table of ["events", "checkpoints"]) {
      const { sql, params } = chainConditions(scope, chainId, "", {}).build();
      const result = await deps.client.query({
        query: `SELECT DISTINCT tenant_id, chain_id FROM ${table} WHERE ${sql} ORDER BY tenant_id, chain_id`,
        query_params: params,
        format: "JSONEachRow",
      });
      for (const r of await result.json<{ tenant_id: string; chain_id: string }>()) {
        found.set(`${r.tenant_id}\u0000${r.chain_id}`, { tenantId: r.tenant_id, chainId: r.chain_id });
      }
    }
    return [...found.values()].sort((a, b) => (a.tenantId + a.chainId < b.tenantId + b.chainId ? -1 : 1));
  }

  async function checkpointsOf(scope: TenantScope, chainId: string, range: { start?: number; end?: number }) {
    const { sql, params } = chainConditions(scope, chainId, "time", range).build();
    const result = await deps.client.query({
      query: `SELECT tenant_id, chain_id, seq, head_hash, toUnixTimestamp64Micro(time) AS time_us, signature, key_id
        FROM checkpoints WHERE ${sql} ORDER BY seq`,
      query_params: params,
      format: "JSONEachRow",
    });
    return (await result.json<CheckpointRow>()).map(fromCheckpointRow);
  }

  async function verifyOne(tenantId: string, chainId: string, range: { start?: number; end?: number }, signal: AbortSignal) {
    const scope: TenantScope = { kind: "tenant", tenant: tenantId };
    const ranged = range.start !== undefined || range.end !== undefined;
    const verifier = new ChainVerifier(
      tenantId,
      chainId,
      key,
      await checkpointsOf(scope, chainId, range),
      ranged ? undefined : { nowUs: nowMicros(), retentionDays: deps.retentionDays(tenantId) },
    );
    const { sql, params } = chainConditions(scope, chainId, "received_at", range).build();
    const rows = jsonRows<SelectedRow>(
      deps.stream({
        sql: `SELECT ${SELECT_COLUMNS} FROM events WHERE ${sql} ORDER BY seq`,
        params,
        format: "JSONEachRow",
        settings: { max_block_size: 4096, max_bytes_before_external_sort: 256 * 1024 * 1024 },
        signal,
      }),
    );
    for await (const row of rows) verifier.add(recordFromRow(row), Number(row.received_at_us));
    return verifier.finish();
  }

  return {
    async verifyChain(req, ctx) {
      const principal = callerPermitted(ctx, "IntegrityService.VerifyChain");
      const scope = readScope(principal, req.tenantId);
      const range = { start: bound("start_time", req.startTime), end: bound("end_time", req.endTime) };
      const chains = [];
      for (const c of await chainsOf(scope, req.chainId)) chains.push(toChainVerification(await verifyOne(c.tenantId, c.chainId, range, ctx.signal)));
      return create(VerifyChainResponseSchema, { ok: chains.every((c) => c.ok), chains });
    },

    async getCheckpoint(req, ctx) {
      const principal = callerPermitted(ctx, "IntegrityService.GetCheckpoint");
      const { sql, params } = chainConditions(readScope(principal, req.tenantId), req.chainId, "", {}).build();
      const result = await deps.client.query({
        query: `SELECT tenant_id, chain_id, max(seq) AS head_seq, argMax(head_hash, seq) AS head,
            argMax(toUnixTimestamp64Micro(time), seq) AS head_time_us, argMax(signature, seq) AS head_signature, argMax(key_id, seq) AS head_key_id
          FROM checkpoints WHERE ${sql} GROUP BY tenant_id, chain_id ORDER BY tenant_id, chain_id`,
        query_params: params,
        format: "JSONEachRow",
      });
      const rows = await result.json<{ tenant_id: string; chain_id: string; head_seq: string; head: string; head_time_us: string; head_signature: string; head_key_id: string }>();
      return create(GetCheckpointResponseSchema, {
        checkpoints: rows.map((r) =>
          toCheckpointMessage(
            fromCheckpointRow({ ...r, seq: r.head_seq, head_hash: r.head, time_us: r.head_time_us, signature: r.head_signature, key_id: r.head_key_id }),
          ),
        ),
      });
    },

    async getPublicKey(_req, ctx) {
      callerPermitted(ctx, "IntegrityService.GetPublicKey");
      return create(GetPublicKeyResponseSchema, { keyId: deps.signer.keyId, publicKeyPem: deps.signer.publicKeyPem });
    },
  };
}
