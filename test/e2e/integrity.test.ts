import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import { Session } from "chdb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChainVerificationSchema, ProblemKind } from "../../gen/auditlog/v1/integrity_pb.js";
import { canonicalEvent, chainHash } from "../../src/integrity/canonical.ts";
import { recordFromRow, SELECT_COLUMNS, type SelectedRow } from "../../src/store/event-row.ts";
import { appendAll } from "../helpers/bulk.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, ROOT, startServer, tempDataDir, type TestServer } from "../helpers/server.ts";

const run = promisify(execFile);
const dataDir = tempDataDir();
let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let admin: string;

/** Each tenant gets 30 events in 3 batches (seq 1..30, checkpoints at 10, 20, 30), then one kind of tampering. */
const TENANTS = ["clean", "altered", "deleted", "forged", "attribute", "swapped", "badsig", "truncated", "headless"];

async function start() {
  server = await startServer({ dataDir });
  clients = connectClients(server.baseUrl, "grpc");
  admin = await server.token("", ["admin"]);
}

const verifyAll = async () => (await clients.integrity.verifyChain({}, bearer(admin))).chains;
const byTenant = <T extends { tenantId: string }>(list: T[]) => Object.fromEntries(list.map((c) => [c.tenantId, c]));

/** Tampering as someone with write access to ClickHouse would: the server is stopped, the engine opened directly. */
function tamper(statements: (session: Session) => void) {
  const session = new Session(join(dataDir, "chdb"));
  try {
    statements(session);
  } finally {
    session.close();
  }
}

beforeAll(async () => {
  await start();
  for (const tenant of TENANTS) {
    const writer = await server.token(tenant, ["writer"]);
    for (let batch = 0; batch < 3; batch++) {
      await appendAll(clients, writer, Array.from({ length: 10 }, (_, i) => sampleEvent(batch * 10 + i, { id: `${tenant}-${batch * 10 + i + 1}` })));
    }
  }
}, 60_000);
afterAll(async () => {
  await server.stop();
  removeDataDir(dataDir);
});

describe("hash chains and signed checkpoints", () => {
  it("every event is on its tenant's chain, seq 1..30, each batch's head signed", async () => {
    const auditor = await server.token("clean", ["auditor"]);
    // Before any read: reads are recorded on the tenant's chain too.
    const { checkpoints } = await clients.integrity.getCheckpoint({}, bearer(auditor));
    const res = await clients.query.searchEvents({ pageSize: 100 }, bearer(auditor));
    const bySeq = res.events.sort((a, b) => Number(a.seq - b.seq));
    expect(bySeq.map((e) => Number(e.seq))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(bySeq.map((e) => e.chainId)).size).toBe(1);
    expect(bySeq[0].prevHash).toBe("0".repeat(64));
    bySeq.slice(1).forEach((e, i) => expect(e.prevHash).toBe(bySeq[i].hash));
    expect(bySeq.filter((e) => e.checkpoint).map((e) => Number(e.seq))).toEqual([10, 20, 30]);
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]).toMatchObject({ tenantId: "clean", seq: 30n, headHash: bySeq[29].hash, chainId: bySeq[0].chainId });

    const { keyId, publicKeyPem } = await clients.integrity.getPublicKey({}, bearer(auditor));
    const wellKnown = await fetch(`${server.baseUrl}/.well-known/auditlog-signing-key`);
    expect(await wellKnown.text()).toBe(publicKeyPem);
    expect(wellKnown.headers.get("x-key-id")).toBe(keyId);
    expect(checkpoints[0].keyId).toBe(keyId);
  });

  it("an untouched log verifies clean", async () => {
    const chains = byTenant(await verifyAll());
    for (const tenant of TENANTS) {
      // "clean" has been read once already: that read is its seq 31.
      const last = tenant === "clean" ? 31n : 30n;
      expect(chains[tenant], tenant).toMatchObject({ ok: true, firstSeq: 1n, lastSeq: last, eventsChecked: last });
    }
  });

  it("only auditors and admins verify, and only their tenant", async () => {
    const writer = await server.token("clean", ["writer"]);
    await expect(clients.integrity.verifyChain({}, bearer(writer))).rejects.toMatchObject({ code: 7 });
    const auditor = await server.token("clean", ["auditor"]);
    await expect(clients.integrity.verifyChain({ tenantId: "altered" }, bearer(auditor))).rejects.toMatchObject({ code: 7 });
    const own = await clients.integrity.verifyChain({}, bearer(auditor));
    expect(own.chains.map((c) => c.tenantId)).toEqual(["clean"]);
  });

  describe("after tampering directly in ClickHouse", () => {
    let chains: Record<string, Awaited<ReturnType<typeof verifyAll>>[number]>;

    beforeAll(async () => {
      await server.stop();
      const where = (tenant: string, cond: string) => `tenant_id = '${tenant}' AND ${cond}`;
      const sync = " SETTINGS mutations_sync = 2";
      tamper((s) => {
        s.query(`ALTER TABLE events UPDATE message = 'nothing happened' WHERE ${where("altered", "seq = 12")}${sync}`);
        s.query(`ALTER TABLE events DELETE WHERE ${where("deleted", "seq = 7")}${sync}`);
        s.query(`ALTER TABLE events UPDATE attributes = mapUpdate(attributes, map('plan', 'enterprise')) WHERE ${where("attribute", "seq = 20")}${sync}`);
        s.query(`ALTER TABLE events UPDATE seq = if(seq = 5, 6, 5) WHERE ${where("swapped", "seq IN (5, 6)")}${sync}`);
        // A signature copied from another checkpoint: well-formed, but not over this head.
        const other = JSON.parse(s.query(`SELECT signature FROM checkpoints WHERE ${where("badsig", "seq = 10")}`, "JSONEachRow")).signature;
        s.query(`ALTER TABLE checkpoints UPDATE signature = '${other}' WHERE ${where("badsig", "seq = 20")}${sync}`);
        s.query(`ALTER TABLE events UPDATE checkpoint_signature = '${other}' WHERE ${where("badsig", "seq = 20")}${sync}`);
        s.query(`ALTER TABLE events DELETE WHERE ${where("truncated", "seq > 20")}${sync}`);
        s.query(`ALTER TABLE events DELETE WHERE ${where("headless", "seq <= 10")}${sync}`);
        // A forged event with a plausible hash: correctly chained onto seq 14, claiming seq 15.
        const row: SelectedRow = JSON.parse(s.query(`SELECT ${SELECT_COLUMNS} FROM events WHERE ${where("forged", "seq = 15")}`, "JSONEachRow"));
        const record = { ...recordFromRow(row), id: "forged-15", message: "a harmless event" };
        const hash = chainHash(row.prev_hash, canonicalEvent(record, Number(row.received_at_us), row.chain_id, 15));
        s.queryBind(
          `INSERT INTO events SELECT * REPLACE ({id:String} AS id, {message:String} AS message, {hash:String} AS hash, '' AS checkpoint_signature)
           FROM events WHERE ${where("forged", "seq = 15")}`,
          { id: record.id, message: record.message, hash },
        );
      });
      await start();
      chains = byTenant(await verifyAll());
    }, 60_000);

    it.each([
      ["altered", ProblemKind.ALTERED, 12n, "altered-12"],
      ["attribute", ProblemKind.ALTERED, 20n, "attribute-20"],
      ["deleted", ProblemKind.REMOVED, 7n, ""],
      ["forged", ProblemKind.INSERTED, 15n, undefined],
      ["swapped", ProblemKind.ALTERED, 5n, undefined],
      ["badsig", ProblemKind.BAD_SIGNATURE, 20n, "badsig-20"],
      ["truncated", ProblemKind.REMOVED, 21n, ""],
      ["headless", ProblemKind.REMOVED, 1n, ""],
    ] as const)("%s: detected as %s and located at its seq", (tenant, kind, seq, eventId) => {
      const chain = chains[tenant];
      expect(chain.ok).toBe(false);
      expect(chain.problem).toMatchObject({ kind, seq, ...(eventId === undefined ? {} : { eventId }) });
      expect(chain.problem!.detail).not.toBe("");
    });

    it("a time range verifies only the events committed in it", async () => {
      const auditor = await server.token("deleted", ["auditor"]);
      const [eleventh] = (await clients.query.searchEvents({ filter: { types: [] }, pageSize: 100 }, bearer(auditor))).events.filter((e) => e.seq === 11n);
      // The hole at seq 7 lies before the range; the range starts mid-chain, which is fine.
      const [after] = (await clients.integrity.verifyChain({ tenantId: "deleted", startTime: eleventh.receivedAt }, bearer(admin))).chains;
      expect(after).toMatchObject({ ok: true, firstSeq: 11n });
      const [before] = (await clients.integrity.verifyChain({ tenantId: "deleted", endTime: eleventh.receivedAt }, bearer(admin))).chains;
      expect(before).toMatchObject({ ok: false, lastSeq: 10n, problem: { kind: ProblemKind.REMOVED, seq: 7n } });
    });

    it("the untouched tenant still verifies, and the response says not everything did", async () => {
      expect(chains.clean.ok).toBe(true);
      expect((await clients.integrity.verifyChain({}, bearer(admin))).ok).toBe(false);
    });

    it("a restarted server continues its chains from the stored head", async () => {
      const before = chains.clean.lastSeq;
      await appendAll(clients, await server.token("clean", ["writer"]), [sampleEvent(99, { id: "clean-after-restart" })]);
      const [clean] = (await clients.integrity.verifyChain({ tenantId: "clean" }, bearer(admin))).chains;
      expect(clean).toMatchObject({ ok: true, firstSeq: 1n, lastSeq: before + 1n, chainId: chains.clean.chainId });
    });

    it("the offline verifier, given only an NDJSON export and the public key, agrees with VerifyChain", async () => {
      const dir = tempDataDir();
      const keyFile = join(dir, "key.pem");
      writeFileSync(keyFile, await (await fetch(`${server.baseUrl}/.well-known/auditlog-signing-key`)).text());
      const online = byTenant(await verifyAll());
      for (const tenant of TENANTS) {
        const file = join(dir, `${tenant}.ndjson`);
        const res = await fetch(`${server.baseUrl}/v1/export?tenant_id=${tenant}`, { headers: { authorization: `Bearer ${admin}` } });
        writeFileSync(file, Buffer.from(await res.arrayBuffer()));
        const cli = await run(process.execPath, [join(ROOT, "bin/auditlog.mjs"), "verify", "--export", file, "--public-key", keyFile, "--json"], { cwd: ROOT }).catch(
          (err) => err,
        );
        const offline = JSON.parse(cli.stdout).reports[0];
        const rpc = toJson(ChainVerificationSchema, online[tenant]) as Record<string, any>;
        if (tenant === "truncated" || tenant === "headless") {
          // Only the server's checkpoints table knows the chain went further
          // (or started earlier); the export alone is consistent.
          expect(offline.problem, tenant).toBeUndefined();
          expect(cli.code ?? 0, tenant).toBe(0);
          continue;
        }
        expect(cli.code ?? 0, tenant).toBe(rpc.ok ? 0 : 1);
        expect(offline.problem?.kind, tenant).toBe(rpc.problem ? rpc.problem.kind.replace("PROBLEM_KIND_", "") : undefined);
        expect(offline.problem?.seq, tenant).toBe(rpc.problem ? Number(rpc.problem.seq) : undefined);
      }
      removeDataDir(dir);
    });
  });
});
