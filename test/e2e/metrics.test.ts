import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { parseMetrics, scrapeMetrics } from "../helpers/metrics.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { connectTail } from "../helpers/tail.ts";

const SCRAPE_TOKEN = "scrape-token-0123456789";
let server: TestServer;
let clients: ReturnType<typeof connectClients>;

beforeAll(async () => {
  server = await startServer({ env: { AUDITLOG_METRICS_TOKEN: SCRAPE_TOKEN } });
  clients = connectClients(server.baseUrl, "grpc");
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

const scrape = () => scrapeMetrics(server.baseUrl, SCRAPE_TOKEN);
const APPEND = "auditlog.v1.IngestService/Append";
const INGEST = "auditlog.v1.IngestService/Ingest";

describe("GET /metrics", () => {
  it("answers only the configured bearer token when one is set, saying what it needs", async () => {
    for (const authorization of [undefined, "Bearer wrong", `Basic ${SCRAPE_TOKEN}`]) {
      const res = await fetch(`${server.baseUrl}/metrics`, { headers: authorization ? { authorization } : {} });
      expect(res.status, authorization).toBe(401);
      expect(await res.json()).toEqual({ code: "unauthenticated", message: "GET /metrics needs Authorization: Bearer <AUDITLOG_METRICS_TOKEN>" });
    }
    const res = await fetch(`${server.baseUrl}/metrics`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const metrics = parseMetrics(await res.text());
    expect(metrics.value("process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024);
    expect(metrics.value("nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
  });

  it("counts what became of ingested events, the RPCs by outcome, and the batches committed", async () => {
    const writer = await server.token("metrics", ["writer"]);
    const before = await scrape();
    const events = [0, 1, 2].map((n) => sampleEvent(n, { id: `m-${n}` }));
    const first = await clients.ingest.append({ events: [...events, sampleEvent(3, { id: "m-3", type: "" })] }, bearer(writer));
    expect(first.rejections).toHaveLength(1);
    const again = await clients.ingest.append({ events }, bearer(writer));
    expect(again.duplicateCount).toBe(3n);
    const streamed = await clients.ingest.ingest(
      (async function* () {
        yield { events: [sampleEvent(4, { id: "m-4" })] };
        yield { events: [sampleEvent(5, { id: "m-5" })] };
      })(),
      bearer(writer),
    );
    expect(streamed.acceptedCount).toBe(2n);
    await expect(clients.ingest.append({ events }, bearer("not-a-token"))).rejects.toMatchObject({ code: Code.Unauthenticated });
    const after = await scrape();

    const delta = (name: string, labels?: Record<string, string>) => after.count(name, labels) - before.count(name, labels);
    expect(delta("auditlog_ingest_events_total", { result: "stored" })).toBe(5);
    expect(delta("auditlog_ingest_events_total", { result: "duplicate" })).toBe(3);
    expect(delta("auditlog_ingest_events_total", { result: "rejected" })).toBe(1);
    expect(delta("auditlog_rpc_requests_total", { method: APPEND, code: "ok" })).toBe(2);
    expect(delta("auditlog_rpc_requests_total", { method: APPEND, code: "unauthenticated" })).toBe(1);
    expect(delta("auditlog_rpc_requests_total", { method: INGEST, code: "ok" })).toBe(1);
    expect(delta("auditlog_rpc_duration_seconds_count", { method: APPEND })).toBe(3);
    expect(delta("auditlog_rpc_duration_seconds_count", { method: INGEST })).toBe(1);
    // Every event queued (duplicates included: the commit finds them) went through some batch.
    expect(delta("auditlog_commit_batch_events_sum")).toBe(8);
    expect(delta("auditlog_commit_duration_seconds_count")).toBeGreaterThanOrEqual(2);
    expect(delta("auditlog_commit_failures_total")).toBe(0);
    // Everything acknowledged has left the queue.
    expect(after.value("auditlog_ingest_queue_bytes")).toBe(0);
  });

  it("counts the live tails while they are open, and a refused tail by its code", async () => {
    const auditor = await server.token("metrics", ["auditor"]);
    const before = await scrape();
    const tail = connectTail(clients, auditor, {});
    await tail.collector.until((c) => c.live);
    expect((await scrape()).value("auditlog_tail_subscribers")).toBe(before.count("auditlog_tail_subscribers") + 1);
    tail.close();

    const writer = await server.token("metrics", ["writer"]);
    const refused = connectTail(clients, writer, {});
    await refused.collector.until((c) => c.ended !== undefined);
    expect(refused.collector.ended?.error).toMatchObject({ code: Code.PermissionDenied });
    const tails = { method: "auditlog.v1.QueryService/TailEvents", code: "permission_denied" };
    expect((await scrape()).count("auditlog_rpc_requests_total", tails)).toBe(before.count("auditlog_rpc_requests_total", tails) + 1);
  });

  it("tells how newest-first pages were read: a store of a few days skips the last day's window", async () => {
    const auditor = await server.token("metrics", ["auditor"]);
    const before = await scrape();
    await clients.query.searchEvents({ pageSize: 2 }, bearer(auditor));
    const after = await scrape();
    expect(after.count("auditlog_search_recent_window_total", { outcome: "skipped" })).toBe(
      before.count("auditlog_search_recent_window_total", { outcome: "skipped" }) + 1,
    );
  });
});

describe("GET /metrics without a token configured", () => {
  it("is open: it holds no event data", async () => {
    const open = await startServer();
    try {
      const event = sampleEvent(1, { actor: { id: "actor-secret-7", type: "user" }, attributes: { card: "card-secret-9" } });
      await connectClients(open.baseUrl).ingest.append({ events: [event] }, bearer(await open.token("tenant-secret-3", ["writer"])));
      const res = await fetch(`${open.baseUrl}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(parseMetrics(text).count("auditlog_ingest_events_total", { result: "stored" })).toBe(1);
      // No tenant, actor or other value of the events in any label.
      expect(text).not.toMatch(/secret/);
    } finally {
      await open.stop();
      removeDataDir(open.dataDir);
    }
  });
});
