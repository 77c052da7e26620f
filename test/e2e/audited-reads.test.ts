import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendAll } from "../helpers/bulk.ts";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail, type TailCollector } from "../helpers/tail.ts";

let server: TestServer;
let clients: ReturnType<typeof connectClients>;
let auditor: string;
/** Every read event of tenant "reads", as it is committed. */
let watcher: ReturnType<typeof connectTail>;

beforeAll(async () => {
  server = await startServer();
  clients = connectClients(server.baseUrl, "connect-json");
  auditor = await server.token("reads", ["auditor"], { subject: "alice" });
  await appendAll(clients, await server.token("reads", ["writer"]), Array.from({ length: 30 }, (_, n) => sampleEvent(n)));
  watcher = connectTail(clients, await server.token("reads", ["auditor"], { subject: "watcher" }), {
    filter: { sources: ["auditlog"], actorIds: ["alice"] },
  });
  await watcher.collector.until((c) => c.live);
});
afterAll(async () => {
  watcher.close();
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

/** The next read event the watcher receives that matches. */
async function readEvent(type: string, match: (attributes: Record<string, string>) => boolean = () => true) {
  const find = (c: TailCollector) => c.events.find((e) => e.type === type && match(e.attributes as Record<string, string>));
  await watcher.collector.until((c) => find(c) !== undefined);
  return find(watcher.collector)!;
}

describe("reads leave their own audit events in the tenant's log", () => {
  it("SearchEvents: who, from where, with which filter, and how many results", async () => {
    const res = await clients.query.searchEvents(
      { filter: { types: ["auth.login"] }, pageSize: 4 },
      { headers: { authorization: `Bearer ${auditor}`, "user-agent": "audit-test/1.0", "x-request-id": "rq-search-1" } },
    );
    expect(res.events).toHaveLength(4);
    const event = await readEvent("auditlog.read.search");
    expect(event).toMatchObject({
      tenantId: "reads",
      action: "VIEW",
      outcome: "OUTCOME_SUCCESS",
      severity: "SEVERITY_INFO",
      actor: { id: "alice", type: "principal", ip: "127.0.0.1", userAgent: "audit-test/1.0" },
      source: "auditlog",
      requestId: "rq-search-1",
      attributes: { filter: '{"types":["auth.login"]}', result_count: "4", scope: "reads" },
    });
  });

  it("GetEvent records the id read", async () => {
    await clients.query.getEvent({ id: "evt-3" }, bearer(auditor));
    const event = await readEvent("auditlog.read.get", (a) => a.event_id === "evt-3");
    expect(event.attributes).toMatchObject({ event_id: "evt-3", result_count: "1" });
  });

  it("a refused read is recorded as a failure, with the reason", async () => {
    await expect(clients.query.searchEvents({ filter: { tenantId: "someone-else" } }, bearer(auditor))).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    const event = await readEvent("auditlog.read.search", (a) => a.error !== undefined);
    expect(event).toMatchObject({ outcome: "OUTCOME_FAILURE", severity: "SEVERITY_WARNING", tenantId: "reads" });
    expect((event.attributes as Record<string, string>).error).toMatch(/^permission_denied: tenant_id "someone-else"/);
  });

  it("an export is recorded when it ends, with its format, rows and bytes", async () => {
    const res = await fetch(`${server.baseUrl}/v1/export?format=csv&type=auth.login`, { headers: { authorization: `Bearer ${auditor}` } });
    const body = await res.text();
    const opened = await readEvent("auditlog.read.export", (a) => a.phase === "opened");
    expect(opened.attributes).toMatchObject({ format: "csv", phase: "opened", filter: '{"types":["auth.login"]}' });
    const event = await readEvent("auditlog.read.export", (a) => a.phase === "closed");
    expect(event.attributes).toMatchObject({
      phase: "closed",
      format: "csv",
      ended: "completed",
      result_count: "6",
      bytes: String(Buffer.byteLength(body)),
      filter: '{"types":["auth.login"]}',
    });
  });

  it("an admin reading every tenant is recorded in the admin audit tenant", async () => {
    const admin = await server.token("", ["admin"], { subject: "root" });
    const adminWatch = connectTail(clients, admin, { filter: { tenantId: "_admin", actorIds: ["root"] } });
    await adminWatch.collector.until((c) => c.live);
    await clients.query.searchEvents({}, bearer(admin));
    await adminWatch.collector.until((c) => c.events.some((e) => e.type === "auditlog.read.search"));
    adminWatch.close();
    const event = adminWatch.collector.events.find((e) => e.type === "auditlog.read.search")!;
    expect(event).toMatchObject({ tenantId: "_admin", attributes: { scope: "*" } });
  });
});
