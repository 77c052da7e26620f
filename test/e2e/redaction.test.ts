import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";

const leaky = (id: string) =>
  sampleEvent(1, {
    id,
    message: "login with Bearer abc.def-123 by jane@example.com",
    attributes: { password: "hunter2-Zq9", favorite_color: "teal", note: "card 4111 1111 1111 1111 on file", plan: "pro" },
    before: { user: { password: "old-Zq9", name: "Jane" } },
    after: { cards: [{ number: "5500-0000-0000-0004", label: "work" }] },
  });

let server: TestServer;
let clients: ReturnType<typeof connectClients>;
beforeAll(async () => {
  server = await startServer();
  clients = connectClients(server.baseUrl, "grpc");
  const admin = bearer(await server.token("", ["admin"]));
  await clients.tenants.createTenant({ tenant: { tenantId: "acme", redaction: { keys: ["favorite_color"], emails: true } } }, admin);
});
afterAll(() => removeDataDir(server.dataDir));

async function stored(tenant: string, id: string) {
  await clients.ingest.append({ events: [leaky(id)] }, bearer(await server.token(tenant, ["writer"])));
  const { event } = await clients.query.getEvent({ id }, bearer(await server.token(tenant, ["auditor"])));
  return event!;
}

describe("redaction before storage", () => {
  it("masks secret keys and detected values, by the global rules plus the tenant's, and says what it masked", async () => {
    const event = await stored("acme", "leaky-acme");
    expect(event.message).toBe("login with Bearer [REDACTED] by [REDACTED:email]");
    expect(event.attributes).toEqual({
      password: "[REDACTED]",
      favorite_color: "[REDACTED]",
      note: "card [REDACTED:card] on file",
      plan: "pro",
      "auditlog.redacted": "message,attributes.password,attributes.favorite_color,attributes.note,before.user.password,after.cards.0.number",
    });
    expect(event.before).toEqual({ user: { password: "[REDACTED]", name: "Jane" } });
    expect(event.after).toEqual({ cards: [{ number: "[REDACTED:card]", label: "work" }] });
    // Identifiers are never touched.
    expect(event.actor?.id).toBe(leaky("x").actor?.id);
  });

  it("applies only the global rules to a tenant without its own", async () => {
    const event = await stored("other", "leaky-other");
    expect(event.message).toBe("login with Bearer [REDACTED] by jane@example.com");
    expect(event.attributes.favorite_color).toBe("teal");
    expect(event.attributes.password).toBe("[REDACTED]");
    expect(event.attributes["auditlog.redacted"]).toBe("message,attributes.password,attributes.note,before.user.password,after.cards.0.number");
  });

  it("refuses an event that sets the service's own attributes, keeping its neighbours", async () => {
    const res = await clients.ingest.append(
      { events: [sampleEvent(2, { id: "forged", attributes: { "auditlog.redacted": "nothing" } }), sampleEvent(3, { id: "fine" })] },
      bearer(await server.token("acme", ["writer"])),
    );
    expect(res.acceptedCount).toBe(1n);
    expect(res.rejections[0]).toMatchObject({ index: 0n, field: "attributes", code: "invalid_argument" });
    expect(res.rejections[0].reason).toContain('keys starting with "auditlog." are set by the service');
  });

  it("chains and signs the redacted event: the tenant's chain verifies", async () => {
    const res = await clients.integrity.verifyChain({}, bearer(await server.token("acme", ["auditor"])));
    expect(res.ok).toBe(true);
  });

  it("never writes the original values to the data directory", async () => {
    await server.stop();
    const secrets = ["hunter2-Zq9", "old-Zq9", "4111 1111 1111 1111", "5500-0000-0000-0004", "abc.def-123"].map((s) => Buffer.from(s));
    const hits: string[] = [];
    for (const entry of readdirSync(server.dataDir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const bytes = readFileSync(join(entry.parentPath, entry.name));
      for (const s of secrets) if (bytes.includes(s)) hits.push(`${entry.name}: ${s}`);
    }
    expect(hits).toEqual([]);
  });
});
