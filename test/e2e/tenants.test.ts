import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { TenantSchema } from "../../gen/auditlog/v1/tenant_pb.js";
import { Session } from "chdb";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, connectFailure as failure, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { StatsDimension, TimeBucket } from "../../gen/auditlog/v1/query_pb.js";


describe("TenantService, with tenants created by admins only", () => {
  let server: TestServer;
  let admin: ReturnType<typeof bearer>;
  const clients = () => connectClients(server.baseUrl, "connect-json");

  beforeAll(async () => {
    server = await startServer({ env: { AUDITLOG_AUTO_CREATE_TENANTS: "false" } });
    admin = bearer(await server.token("", ["admin"]));
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(server.dataDir);
  });

  it("refuses every call of a token whose tenant does not exist, saying how to create it", async () => {
    const writer = bearer(await server.token("ghost", ["writer"]));
    const err = await failure(clients().ingest.append({ events: [sampleEvent(1)] }, writer));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe('tenant "ghost" does not exist; an admin creates it with TenantService.CreateTenant');
    const auditor = bearer(await server.token("ghost", ["auditor"]));
    expect((await failure(clients().query.searchEvents({}, auditor))).code).toBe(Code.NotFound);
    const res = await fetch(`${server.baseUrl}/v1/export?format=ndjson`, { headers: auditor.headers });
    expect(res.status).toBe(404);
  });

  it("creates a tenant with its policies, and refuses the same id twice", async () => {
    const { tenants } = clients();
    const created = await tenants.createTenant(
      { tenant: { tenantId: "acme", displayName: "Acme Corp", retentionDays: 30, rateLimits: { requestsPerSecond: 500 }, redaction: { keys: ["favorite_color"] } } },
      admin,
    );
    expect(created.tenant).toMatchObject({ tenantId: "acme", displayName: "Acme Corp", retentionDays: 30 });
    expect(created.tenant?.rateLimits?.requestsPerSecond).toBe(500);
    expect(created.tenant?.redaction?.keys).toEqual(["favorite_color"]);
    expect(created.tenant?.createTime).toEqual(created.tenant?.updateTime);

    const again = await failure(tenants.createTenant({ tenant: { tenantId: "acme" } }, admin));
    expect(again.code).toBe(Code.AlreadyExists);
    expect(again.rawMessage).toContain('tenant "acme" already exists');
  });

  it("lets the tenant's tokens in once it exists", async () => {
    const writer = bearer(await server.token("acme", ["writer"]));
    const res = await clients().ingest.append({ events: [sampleEvent(1, { id: "first-acme" })] }, writer);
    expect(res.acceptedCount).toBe(1n);
  });

  it("refuses bad tenant ids and bad policies with what to fix", async () => {
    const { tenants } = clients();
    for (const [tenant, message] of [
      [{ tenantId: "" }, "must be 1 to 64 letters"],
      [{ tenantId: "has space" }, "must be 1 to 64 letters"],
      [{ tenantId: "x".repeat(65) }, "must be 1 to 64 letters"],
      [{ tenantId: "ok", retentionDays: 40_000 }, "retention_days must be within 0..36500"],
      [{ tenantId: "ok", redaction: { keys: ["--"] } }, "must have letters or digits"],
    ] as [MessageInitShape<typeof TenantSchema>, string][]) {
      const err = await failure(tenants.createTenant({ tenant }, admin));
      expect(err.code, JSON.stringify(tenant)).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toContain(message);
    }
  });

  it("gets, lists in pages and updates only the fields of the mask", async () => {
    const { tenants } = clients();
    for (const id of ["beta", "gamma", "delta"]) await tenants.createTenant({ tenant: { tenantId: id } }, admin);
    const first = await tenants.listTenants({ pageSize: 2 }, admin);
    const second = await tenants.listTenants({ pageSize: 2, pageToken: first.nextPageToken }, admin);
    const third = await tenants.listTenants({ pageSize: 2, pageToken: second.nextPageToken }, admin);
    const ids = [...first.tenants, ...second.tenants, ...third.tenants].map((t) => t.tenantId);
    // `_admin` is the service's own: it records admins' reads across tenants.
    expect(ids).toEqual(["_admin", "acme", "beta", "delta", "gamma"]);
    expect(third.nextPageToken).toBe("");

    const before = (await tenants.getTenant({ tenantId: "acme" }, admin)).tenant!;
    const updated = await tenants.updateTenant(
      { tenant: { tenantId: "acme", displayName: "ignored: not in the mask", retentionDays: 7 }, updateMask: { paths: ["retention_days"] } },
      admin,
    );
    expect(updated.tenant).toMatchObject({ tenantId: "acme", displayName: "Acme Corp", retentionDays: 7 });
    expect(updated.tenant?.rateLimits?.requestsPerSecond).toBe(500);
    expect(updated.tenant?.createTime).toEqual(before.createTime);
    expect(Number(updated.tenant!.updateTime!.seconds) * 1e9 + updated.tenant!.updateTime!.nanos).toBeGreaterThan(
      Number(before.updateTime!.seconds) * 1e9 + before.updateTime!.nanos,
    );
    expect((await tenants.getTenant({ tenantId: "acme" }, admin)).tenant?.retentionDays).toBe(7);

    expect((await failure(tenants.getTenant({ tenantId: "nope" }, admin))).code).toBe(Code.NotFound);
    expect((await failure(tenants.updateTenant({ tenant: { tenantId: "nope" } }, admin))).code).toBe(Code.NotFound);
    const badPath = await failure(tenants.updateTenant({ tenant: { tenantId: "acme" }, updateMask: { paths: ["tenant_id"] } }, admin));
    expect(badPath.code).toBe(Code.InvalidArgument);
    expect(badPath.rawMessage).toContain('update_mask path "tenant_id" is not one of');
  });

  it("is for admins only", async () => {
    const auditor = bearer(await server.token("acme", ["auditor", "writer", "user"]));
    const err = await failure(clients().tenants.listTenants({}, auditor));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe("ListTenants requires the role admin; the token has: auditor, writer, user");
  });

  it("rejects an admin's events for a tenant that does not exist, one by one, keeping the rest", async () => {
    const res = await clients().ingest.append(
      { events: [sampleEvent(2, { id: "to-ghost", tenantId: "ghost" }), sampleEvent(3, { id: "to-beta", tenantId: "beta" })] },
      admin,
    );
    expect(res.acceptedCount).toBe(1n);
    expect(res.rejections).toEqual([
      expect.objectContaining({ index: 0n, field: "tenant_id", code: "not_found", reason: expect.stringContaining('tenant "ghost" does not exist') }),
    ]);
  });

  it("keeps a tenant's new events for its retention, its older ones for theirs", async () => {
    const writer = bearer(await server.token("acme", ["writer"]));
    await clients().ingest.append({ events: [sampleEvent(4, { id: "after-change" })] }, writer);
    await clients().ingest.append({ events: [sampleEvent(5, { id: "beta-default", tenantId: "beta" })] }, admin);
    await server.stop();
    const session = new Session(join(server.dataDir, "chdb"));
    try {
      const rows = session.query("SELECT id, retention_days FROM events WHERE id IN ('first-acme', 'after-change', 'beta-default') ORDER BY id", "JSONEachRow");
      expect(rows.trim().split("\n").map((l) => JSON.parse(l))).toEqual([
        { id: "after-change", retention_days: 7 },
        { id: "beta-default", retention_days: 90 },
        { id: "first-acme", retention_days: 30 },
      ]);
    } finally {
      session.close();
    }
    server = await startServer({ dataDir: server.dataDir, env: { AUDITLOG_AUTO_CREATE_TENANTS: "false" } });
    admin = bearer(await server.token("", ["admin"]));
    // Tenants are kept in the store, not in the process.
    expect((await clients().tenants.getTenant({ tenantId: "acme" }, admin)).tenant?.retentionDays).toBe(7);
  });
});

describe("tenants created on first use (AUDITLOG_AUTO_CREATE_TENANTS=true)", () => {
  it("creates the token's tenant with the defaults on its first request", async () => {
    const server = await startServer({ env: { AUDITLOG_AUTO_CREATE_TENANTS: "true" } });
    try {
      const { ingest, tenants } = connectClients(server.baseUrl, "grpc");
      await ingest.append({ events: [sampleEvent(1)] }, bearer(await server.token("newco", ["writer"])));
      const { tenant } = await tenants.getTenant({ tenantId: "newco" }, bearer(await server.token("", ["admin"])));
      expect(tenant).toMatchObject({ tenantId: "newco", retentionDays: 0, displayName: "" });
    } finally {
      await server.stop();
      removeDataDir(server.dataDir);
    }
  });
});

describe("retention", () => {
  it("drops events by whole weeks of receipt: a week goes once its newest event has expired", async () => {
    const server = await startServer();
    try {
      const writer = bearer(await server.token("keep", ["writer"]));
      await connectClients(server.baseUrl, "connect-json").ingest.append({ events: [sampleEvent(1, { id: "today" })] }, writer);
      await server.stop();
      const DAY = 86_400_000_000;
      const now = Date.now() * 1000;
      // Monday 00:00 UTC of last week (day 0 of Unix time was a Thursday).
      const lastMonday = (Math.floor((Math.floor(now / DAY) + 3) / 7) * 7 - 3 - 7) * DAY;
      const planted = [
        // Alone in its week and long expired: dropped.
        { id: "old", receivedUs: now - 200 * DAY, days: 90 },
        // Past its 7 days, but its week's last event is not: kept until that one expires.
        { id: "week-start", receivedUs: lastMonday, days: 7 },
        { id: "week-end", receivedUs: lastMonday + 7 * DAY - 1, days: 7 },
      ];
      const session = new Session(join(server.dataDir, "chdb"));
      try {
        const at = (us: number) => `fromUnixTimestamp64Micro(${us}, 'UTC')`;
        session.query(
          `INSERT INTO events (tenant_id, id, time, type, received_at, retention_days) VALUES ${planted
            .map((p) => `('keep', '${p.id}', ${at(p.receivedUs)}, 'planted', ${at(p.receivedUs)}, ${p.days})`)
            .join(", ")}`,
        );
        // The engine's own TTL pass, as in production, only sooner (it waits 4 hours between passes by default).
        session.query("ALTER TABLE events MODIFY SETTING merge_with_ttl_timeout = 1");
        const ids = () => session.query("SELECT id FROM events WHERE tenant_id = 'keep' ORDER BY id", "JSONEachRow").trim().split("\n").map((l) => JSON.parse(l).id);
        for (const deadline = Date.now() + 30_000; ids().includes("old") && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
        expect(ids()).toEqual(["today", "week-end", "week-start"]);
        const partitions = session.query("SELECT DISTINCT partition FROM system.parts WHERE active AND table = 'events' ORDER BY partition", "JSONEachRow");
        expect(partitions.trim().split("\n").map((l) => JSON.parse(l).partition)).toEqual(
          expect.arrayContaining([`('${new Date(lastMonday / 1000).toISOString().slice(0, 10)}',7)`]),
        );
      } finally {
        session.close();
      }
    } finally {
      removeDataDir(server.dataDir);
    }
  });

  it("keeps each hour's stats as long as the events they count: by week of receipt and the events' own retention", async () => {
    const server = await startServer();
    await server.stop();
    const DAY = 86_400_000_000;
    const now = Date.now() * 1000;
    const planted = [
      // Received 30 days ago, kept 7: its week is gone, from the events and from the stats.
      { id: "short", timeUs: now - 30 * DAY, receivedUs: now - 30 * DAY, days: 7 },
      // Received 200 days ago, kept 365 (past the service's default of 90): still counted.
      { id: "long", timeUs: now - 200 * DAY, receivedUs: now - 200 * DAY, days: 365 },
      // Received yesterday, dated 400 days back (an import): kept 90 days from its receipt, and counted as long.
      { id: "imported", timeUs: now - 400 * DAY, receivedUs: now - DAY, days: 90 },
    ];
    const session = new Session(join(server.dataDir, "chdb"));
    try {
      const at = (us: number) => `fromUnixTimestamp64Micro(${us}, 'UTC')`;
      session.query(
        `INSERT INTO events (tenant_id, id, time, type, received_at, retention_days) VALUES ${planted
          .map((p) => `('life', '${p.id}', ${at(p.timeUs)}, 'planted', ${at(p.receivedUs)}, ${p.days})`)
          .join(", ")}`,
      );
      // The engine's own TTL passes, as in production, only sooner.
      for (const table of ["events", "events_hourly"]) session.query(`ALTER TABLE ${table} MODIFY SETTING merge_with_ttl_timeout = 1`);
      const counts = () =>
        JSON.parse(
          session.query(
            "SELECT (SELECT count() FROM events WHERE tenant_id = 'life') AS events, (SELECT sum(events) FROM events_hourly WHERE tenant_id = 'life') AS hourly",
            "JSONEachRow",
          ),
        ) as { events: number; hourly: number };
      const done = () => counts().events === 2 && counts().hourly === 2;
      for (const deadline = Date.now() + 30_000; !done() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
      expect(counts()).toEqual({ events: 2, hourly: 2 });
    } finally {
      session.close();
    }
    const restarted = await startServer({ dataDir: server.dataDir });
    try {
      const { query } = connectClients(restarted.baseUrl, "connect-binary");
      const auth = bearer(await restarted.token("life", ["auditor"]));
      const byDay = { filter: { types: ["planted"] }, groupBy: [StatsDimension.TYPE, StatsDimension.TIME], bucket: TimeBucket.DAY, limit: 100 };
      const fromRollup = await query.getStats(byDay, auth);
      // A query term that excludes nothing makes the same question count the events.
      const scanned = await query.getStats({ ...byDay, filter: { ...byDay.filter, query: "-id:none" } }, auth);
      expect([fromRollup.fromRollup, scanned.fromRollup]).toEqual([true, false]);
      expect(fromRollup.total).toBe(2n);
      expect({ ...fromRollup, fromRollup: true }).toEqual({ ...scanned, fromRollup: true });
    } finally {
      expect(await restarted.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});
