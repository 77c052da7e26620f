import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatsDimension } from "../../gen/auditlog/v1/query_pb.js";
import { PERMISSIONS, type Operation } from "../../src/auth/permissions.ts";
import { ROLES, type Role } from "../../src/auth/principal.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { ROOT, removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail } from "../helpers/tail.ts";

type Clients = ReturnType<typeof connectClients>;

/** One minimal call of each operation; what a permitted caller gets back does not matter here, only whether it is let in. */
const CALLS: Record<Operation, (c: Clients, auth: ReturnType<typeof bearer>, token: string) => Promise<unknown>> = {
  "IngestService.Append": (c, auth) => c.ingest.append({ events: [sampleEvent(900, { id: "" })] }, auth),
  "IngestService.Ingest": (c, auth) => c.ingest.ingest((async function* () { yield { events: [sampleEvent(901, { id: "" })] }; })(), auth),
  "QueryService.SearchEvents": (c, auth) => c.query.searchEvents({}, auth),
  "QueryService.GetEvent": (c, auth) => c.query.getEvent({ id: "alice-1" }, auth),
  "QueryService.GetTimeline": (c, auth) => c.query.getTimeline({ requestId: "shared" }, auth),
  "QueryService.GetStats": (c, auth) => c.query.getStats({}, auth),
  "QueryService.ExportEvents": async (c, auth) => {
    for await (const _ of c.query.exportEvents({}, auth));
  },
  "QueryService.TailEvents": async (c, _auth, token) => {
    const tail = connectTail(c, token, { since: timestampFromMs(0) });
    try {
      await tail.collector.until((t) => t.live);
    } catch {
      throw tail.collector.ended?.error;
    } finally {
      tail.close();
    }
  },
  "QueryService.ListEventTypes": (c, auth) => c.query.listEventTypes({}, auth),
  "IntegrityService.VerifyChain": (c, auth) => c.integrity.verifyChain({}, auth),
  "IntegrityService.GetCheckpoint": (c, auth) => c.integrity.getCheckpoint({}, auth),
  "IntegrityService.GetPublicKey": (c, auth) => c.integrity.getPublicKey({}, auth),
  "TenantService.CreateTenant": (c, auth) => c.tenants.createTenant({ tenant: { tenantId: `t-${Math.random().toString(36).slice(2)}` } }, auth),
  "TenantService.GetTenant": (c, auth) => c.tenants.getTenant({ tenantId: "acme" }, auth),
  "TenantService.ListTenants": (c, auth) => c.tenants.listTenants({}, auth),
  "TenantService.UpdateTenant": (c, auth) => c.tenants.updateTenant({ tenant: { tenantId: "acme", displayName: "Acme" } }, auth),
};

/** null when let in (whatever the answer), else the refusal's code. */
async function refusal(call: Promise<unknown>): Promise<Code | null> {
  try {
    await call;
    return null;
  } catch (err) {
    const code = ConnectError.from(err).code;
    return code === Code.PermissionDenied ? code : null;
  }
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
  const events = [
    sampleEvent(1, { id: "alice-1", actor: { id: "alice" }, requestId: "shared" }),
    sampleEvent(2, { id: "alice-2", actor: { id: "alice" }, requestId: "other" }),
    sampleEvent(3, { id: "bob-1", actor: { id: "bob" }, requestId: "shared" }),
    sampleEvent(4, { id: "bob-2", actor: { id: "bob" }, requestId: "other" }),
  ];
  await connectClients(server.baseUrl).ingest.append({ events }, bearer(await server.token("acme", ["writer"])));
});
afterAll(async () => {
  await server.stop();
  removeDataDir(server.dataDir);
});

describe("the permission matrix, role by role and call by call", () => {
  const rows = Object.entries(PERMISSIONS) as [Operation, readonly Role[]][];
  for (const role of ROLES) {
    it(`lets ${role} do exactly what the matrix says`, async () => {
      const token = await server.token(role === "admin" ? "" : "acme", [role], { subject: "alice" });
      const clients = connectClients(server.baseUrl, "connect-binary");
      for (const [operation, allowed] of rows) {
        const got = await refusal(CALLS[operation](clients, bearer(token), token));
        expect(got, `${role} × ${operation}`).toBe(allowed.includes(role) ? null : Code.PermissionDenied);
      }
    });
  }

  it("is the matrix README documents", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Permissions"));
    const documented: Record<string, string[]> = {};
    for (const line of section.split("\n").slice(1)) {
      if (line.startsWith("#")) break;
      const cells = line.split("|").map((c) => c.trim());
      const name = /^`(\w+\.\w+)`$/.exec(cells[1] ?? "")?.[1];
      if (name) documented[name] = ROLES.filter((_, i) => cells[2 + i] === "✓");
    }
    expect(documented).toEqual(Object.fromEntries((Object.entries(PERMISSIONS) as [string, readonly Role[]][]).map(([op, roles]) => [op, ROLES.filter((r) => roles.includes(r))])));
  });
});

describe("role user: only the events whose actor it is, in its tenant", () => {
  const userOf = async (subject: string, roles: Role[] = ["user"]) => bearer(await server.token("acme", roles, { subject }));
  const noAudit = { query: "-type:auditlog.*" };

  it("searches, gets, counts and correlates only its own events", async () => {
    const { query } = connectClients(server.baseUrl, "connect-json");
    const alice = await userOf("alice");
    const found = await query.searchEvents({ filter: noAudit }, alice);
    expect(found.events.map((e) => e.id).sort()).toEqual(["alice-1", "alice-2"]);
    // Asking for someone else's events narrows, it does not widen.
    expect((await query.searchEvents({ filter: { ...noAudit, actorIds: ["bob"] } }, alice)).events).toEqual([]);
    expect((await query.getEvent({ id: "alice-1" }, alice)).event?.id).toBe("alice-1");
    const notYours = await query.getEvent({ id: "bob-1" }, alice).catch((e) => ConnectError.from(e));
    expect((notYours as ConnectError).code).toBe(Code.NotFound);
    const timeline = await query.getTimeline({ requestId: "shared" }, alice);
    expect(timeline.events.map((e) => e.id)).toEqual(["alice-1"]);
    const stats = await query.getStats({ filter: noAudit, groupBy: [StatsDimension.ACTOR] }, alice);
    expect(stats.rows.map((r) => [r.keys, r.count])).toEqual([[["alice"], 2n]]);
    expect(stats.total).toBe(2n);
    expect(stats.fromRollup).toBe(false);
  });

  it("exports and tails only its own events", async () => {
    const alice = await server.token("acme", ["user"], { subject: "alice" });
    const res = await fetch(`${server.baseUrl}/v1/export?format=ndjson&q=${encodeURIComponent("-type:auditlog.*")}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((e) => e.id).sort()).toEqual(["alice-1", "alice-2"]);

    const tail = connectTail(connectClients(server.baseUrl), alice, { since: timestampFromMs(0), filter: noAudit });
    await tail.collector.until((t) => t.live);
    tail.close();
    expect(tail.collector.events.map((e) => e.id).sort()).toEqual(["alice-1", "alice-2"]);
  });

  it("reads the whole tenant when the token is also an auditor: roles add up", async () => {
    const { query } = connectClients(server.baseUrl, "connect-json");
    const found = await query.searchEvents({ filter: { ...noAudit, actorIds: ["alice", "bob"] } }, await userOf("alice", ["user", "auditor"]));
    expect(found.events.map((e) => e.id).sort()).toEqual(["alice-1", "alice-2", "bob-1", "bob-2"]);
  });
});
