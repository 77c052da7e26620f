import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, connectFailure as failure, connectClients, grpcJsIngestClient } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { socketTail } from "../helpers/tail.ts";


/** Waits as long as the server said to. Time is what refills a bucket: there is no event to await instead. */
const waitRetryAfter = (seconds: string | null) => new Promise((r) => setTimeout(r, Number(seconds) * 1000));

describe("rate limits: token buckets per tenant and per caller", () => {
  let server: TestServer;
  let admin: ReturnType<typeof bearer>;
  const clients = () => connectClients(server.baseUrl, "connect-json");

  beforeAll(async () => {
    server = await startServer({
      env: {
        AUDITLOG_AUTO_CREATE_TENANTS: "false",
        AUDITLOG_RATE_BURST_SECONDS: "1",
        // The server defaults: generous, so only the tenants below are limited.
        AUDITLOG_RATE_PRINCIPAL_REQUESTS: "1000",
      },
    });
    admin = bearer(await server.token("", ["admin"]));
    const { tenants } = clients();
    await tenants.createTenant({ tenant: { tenantId: "slow", rateLimits: { requestsPerSecond: 3 } } }, admin);
    await tenants.createTenant({ tenant: { tenantId: "metered", rateLimits: { ingestEventsPerSecond: 100 } } }, admin);
    await tenants.createTenant({ tenant: { tenantId: "streamed", rateLimits: { ingestEventsPerSecond: 100 } } }, admin);
    await tenants.createTenant({ tenant: { tenantId: "percaller", rateLimits: { principalRequestsPerSecond: 2 } } }, admin);
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(server.dataDir);
  });

  it("refuses requests over a tenant's rate with RESOURCE_EXHAUSTED and a retry-after hint, on every protocol", async () => {
    const auditor = await server.token("slow", ["auditor"]);
    const search = () => fetch(`${server.baseUrl}/auditlog.v1.IntegrityService/GetCheckpoint`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${auditor}` },
      body: "{}",
    });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await search());
    expect(answers.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    const refused = answers[3];
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    const body = await refused.json();
    expect(body.code).toBe("resource_exhausted");
    expect(body.message).toMatch(/^the request rate limit is reached \(tenant "slow": 3\/s, this caller: 1000\/s\); retry in 0\.\d s$/);

    // gRPC (grpc-js): the same code, the hint in the trailers.
    const err = await failure(connectClients(server.baseUrl, "grpc").integrity.getCheckpoint({}, bearer(auditor)));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.metadata.get("retry-after")).toBe("1");

    // Plain HTTP: 429 and Retry-After.
    const download = await fetch(`${server.baseUrl}/v1/export?format=ndjson`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(download.status).toBe(429);
    expect(download.headers.get("retry-after")).toBe("1");

    // The WebSocket tail: the upgrade is refused with 429 and the hint.
    const tail = socketTail(server.baseUrl, auditor);
    const upgrade = await tail.rejected;
    expect(upgrade.status).toBe(429);
    expect(JSON.parse(upgrade.body).code).toBe("resource_exhausted");

    await waitRetryAfter(refused.headers.get("retry-after"));
    expect((await search()).status).toBe(200);
  });

  it("limits each caller on its own: one caller's burst does not stop another", async () => {
    const alice = bearer(await server.token("percaller", ["auditor"], { subject: "alice" }));
    const bob = bearer(await server.token("percaller", ["auditor"], { subject: "bob" }));
    const { integrity } = clients();
    await integrity.getCheckpoint({}, alice);
    await integrity.getCheckpoint({}, alice);
    expect((await failure(integrity.getCheckpoint({}, alice))).code).toBe(Code.ResourceExhausted);
    await integrity.getCheckpoint({}, bob);
    await integrity.getCheckpoint({}, bob);
  });

  it("meters ingest in events: a request over the rate is refused whole and stores nothing", async () => {
    const writer = bearer(await server.token("metered", ["writer"]));
    const auditor = bearer(await server.token("metered", ["auditor"]));
    const { ingest, query } = clients();
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => sampleEvent(from + i, { id: `m-${from + i}` }));
    expect((await ingest.append({ events: batch(0, 100) }, writer)).acceptedCount).toBe(100n);
    const err = await failure(ingest.append({ events: batch(100, 50) }, writer));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toContain("none of these events is stored");
    const stored = await query.searchEvents({ filter: { query: "-type:auditlog.*" }, pageSize: 1000 }, auditor);
    expect(stored.events.map((e) => e.id).sort()).toEqual(batch(0, 100).map((e) => e.id).sort());

    await waitRetryAfter(err.metadata.get("retry-after"));
    expect((await ingest.append({ events: batch(100, 50) }, writer)).acceptedCount).toBe(50n);
  });

  it("ends an Ingest stream that goes over the rate, keeping what was accepted before", async () => {
    const client = grpcJsIngestClient(server.port);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${await server.token("streamed", ["writer"])}`);
    const result = await new Promise<{ err: grpc.ServiceError | null }>((resolve) => {
      const call = client.Ingest(metadata, (err: grpc.ServiceError | null) => resolve({ err }));
      call.write({ events: Array.from({ length: 60 }, (_, i) => ({ id: `s-${i}`, type: "a.b", action: "CREATE", actor: { id: "u" } })) });
      call.write({ events: Array.from({ length: 60 }, (_, i) => ({ id: `s-${60 + i}`, type: "a.b", action: "CREATE", actor: { id: "u" } })) });
      call.end();
    });
    client.close();
    expect(result.err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(result.err?.details).toContain("the events before index 60 of this stream were accepted and stored: 60)");
    // Stored by the time the error says so (it once said it while their batch was still queued).
    const auditor = bearer(await server.token("streamed", ["auditor"]));
    const stored = await clients().query.searchEvents({ filter: { query: "-type:auditlog.*" }, pageSize: 1000 }, auditor);
    expect(stored.events.map((e) => e.id).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `s-${i}`).sort());
  });
});
