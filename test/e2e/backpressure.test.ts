import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcJsIngestClient } from "../helpers/clients.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";

const QUEUE_BYTES = 640_000;
let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    env: {
      LOG_LEVEL: "debug",
      // About two of the stream's 500-event messages (each weighs about 290 KB queued: see encodeOnArrival).
      AUDITLOG_QUEUE_MAX_BYTES: String(QUEUE_BYTES),
      // A batch waits 1 s for company: long enough to see the queue fill up.
      AUDITLOG_BATCH_MAX_EVENTS: "100000",
      AUDITLOG_BATCH_MAX_DELAY_MS: "1000",
    },
  });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

describe("backpressure", () => {
  it("stops reading a stream while the queue is full, then takes every event once there is room", async () => {
    const client = grpcJsIngestClient(server.port);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${await server.token("acme", ["writer"])}`);
    const res = await new Promise<any>((resolve, reject) => {
      const call = client.Ingest(md, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r)));
      (async () => {
        for (let m = 0; m < 10; m++) {
          const events = Array.from({ length: 500 }, (_, i) => ({ type: "bp.test", action: "CREATE", actor: { id: `u-${m}-${i}` } }));
          if (!call.write({ events })) await new Promise((r) => call.once("drain", r));
        }
        call.end();
      })().catch(reject);
    });
    client.close();
    expect(res.acceptedCount).toBe("5000");

    // The log is the server's own account, in order: until the first batch
    // was committed, no more than the queue's bytes were taken in, though the
    // client had sent far more.
    const sequence = server.logs.filter((l) => l.msg === "events admitted" || l.msg === "batch committed");
    const firstCommit = sequence.findIndex((l) => l.msg === "batch committed");
    expect(firstCommit).toBeGreaterThan(0);
    const before = sequence.slice(0, firstCommit);
    expect(before.reduce((n, l) => n + Number(l.weight), 0)).toBeLessThanOrEqual(QUEUE_BYTES);
    expect(before.reduce((n, l) => n + Number(l.admitted), 0)).toBeLessThan(5000);
    expect(sequence.filter((l) => l.msg === "batch committed").reduce((n, l) => n + Number(l.inserted), 0)).toBe(5000);
  });
});
