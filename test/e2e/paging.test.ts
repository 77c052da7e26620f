import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/auditlog/v1/event_pb.js";
import { bearer, connectClients } from "../helpers/clients.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDataDir(server.dataDir);
});

const BASE = Date.UTC(2026, 5, 1);
const event = (id: string, minute: number) =>
  create(EventSchema, {
    id,
    // Many events share a time: the order must still be total (time, then id).
    time: timestampFromDate(new Date(BASE + Math.floor(minute) * 60_000)),
    type: "paging.test",
    action: "VIEW",
    actor: { id: "pager" },
  });

describe("paging with page_token", () => {
  it("returns every event exactly once, newest first, while new events keep arriving", async () => {
    const { ingest, query } = connectClients(server.baseUrl, "connect-binary");
    const writer = await server.token("acme", ["writer"]);
    const auditor = await server.token("acme", ["auditor"]);
    const original = Array.from({ length: 3000 }, (_, n) => event(`orig-${n}`, n / 7));
    for (let i = 0; i < original.length; i += 1000) {
      await ingest.append({ events: original.slice(i, i + 1000) }, bearer(writer));
    }

    const filter = { types: ["paging.test"] };
    const seen: { id: string; time: bigint }[] = [];
    let page = await query.searchEvents({ filter, pageSize: 97 }, bearer(auditor));
    seen.push(...page.events.map((e) => ({ id: e.id, time: e.time!.seconds })));

    // From now on, events keep arriving: some newer than everything, some
    // dated inside the part already read, some inside the part still ahead.
    let writing = true;
    let written = 0;
    const writerLoop = (async () => {
      while (writing) {
        const batch = Array.from({ length: 50 }, (_, k) => event(`late-${written + k}`, (written + k) % 500));
        await ingest.append({ events: batch }, bearer(writer));
        written += batch.length;
      }
    })();

    while (page.nextPageToken) {
      page = await query.searchEvents({ filter, pageSize: 97, pageToken: page.nextPageToken }, bearer(auditor));
      seen.push(...page.events.map((e) => ({ id: e.id, time: e.time!.seconds })));
      // Let the writer get a batch in between pages.
      const target = written + 50;
      while (written < target) await new Promise((r) => setImmediate(r));
    }
    writing = false;
    await writerLoop;

    expect(written).toBeGreaterThan(0);
    const ids = seen.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(original.map((e) => e.id)));
    for (let i = 1; i < seen.length; i++) expect(seen[i].time <= seen[i - 1].time).toBe(true);

    // A new search (a new snapshot) sees the late arrivals too.
    let total = 0;
    let token = "";
    do {
      const res = await query.searchEvents({ filter, pageSize: 1000, pageToken: token }, bearer(auditor));
      total += res.events.length;
      token = res.nextPageToken;
    } while (token);
    expect(total).toBe(3000 + written);
  });

  it("has no next_page_token on the last page, also when it is exactly full", async () => {
    const { ingest, query } = connectClients(server.baseUrl);
    await ingest.append({ events: Array.from({ length: 10 }, (_, n) => ({ ...event(`exact-${n}`, n), type: "paging.exact" })) }, bearer(await server.token("acme", ["writer"])));
    const auditor = await server.token("acme", ["auditor"]);
    const first = await query.searchEvents({ filter: { types: ["paging.exact"] }, pageSize: 5 }, bearer(auditor));
    expect(first.events).toHaveLength(5);
    const second = await query.searchEvents({ filter: { types: ["paging.exact"] }, pageSize: 5, pageToken: first.nextPageToken }, bearer(auditor));
    expect(second.events.map((e) => e.id)).toEqual(["exact-4", "exact-3", "exact-2", "exact-1", "exact-0"]);
    expect(second.nextPageToken).toBe("");
  });
});

describe("response compression", () => {
  // Pages of the 3,000 events the first test stored.
  it("sends a page under AUDITLOG_COMPRESS_MIN_BYTES as it is, and a larger one gzipped when the client accepts it", async () => {
    const auditor = await server.token("acme", ["auditor"]);
    const search = async (pageSize: number) => {
      const res = await fetch(`${server.baseUrl}/auditlog.v1.QueryService/SearchEvents`, {
        method: "POST",
        headers: { "content-type": "application/json", "accept-encoding": "gzip", authorization: `Bearer ${auditor}` },
        body: JSON.stringify({ filter: { types: ["paging.test"] }, pageSize }),
      });
      // fetch decompresses the body itself; the header says how it travelled.
      return { encoding: res.headers.get("content-encoding"), events: ((await res.json()) as { events: unknown[] }).events.length };
    };
    expect(await search(50)).toEqual({ encoding: null, events: 50 });
    expect(await search(1000)).toEqual({ encoding: "gzip", events: 1000 });
  });
});
