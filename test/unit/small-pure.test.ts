import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetStatsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { GetStatsResponseWireSchema } from "../../src/query/query-wire-schema.ts";
import { encodedStatsResponse, statsResponse, type StatsResult } from "../../src/query/stats.ts";
import { parseDuration } from "../../src/auth/token.ts";
import { mayBeServerMade, serverEventId as uuidv7 } from "../../src/ingest/uuid7.ts";
import { dateTime64, insertRowJson, insertRowTail, type EventRecord } from "../../src/store/event-row.ts";
import { encodeOnArrival } from "../../src/ingest/commit.ts";
import { encodedRowsBody } from "../../src/store/event-writes.ts";
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import { parseError } from "@clickhouse/client";
import { Code } from "@connectrpc/connect";
import pino from "pino";
import { failureOf, toConnectError } from "../../src/errors.ts";
import { grpcMessageEscaped } from "../../src/http/connect-handler.ts";
import { withoutCredentials } from "../../src/log.ts";

describe("parseDuration", () => {
  it.each([
    ["90s", 90],
    ["15m", 900],
    ["1h", 3600],
    ["7d", 604_800],
    ["0s", 0],
    ["365d", 31_536_000],
    [" 2h ", 7200],
  ])("parses %j as %d seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "10", "h", "1w", "1.5h", "-1h", "1 h", "1H", "1h30m", "1hh", "one h"])("rejects %j", (text) => {
    expect(() => parseDuration(text)).toThrow(`invalid duration ${JSON.stringify(text)}; use e.g. 90s, 15m, 1h or 7d`);
  });
});

describe("serverEventId (UUIDv7)", () => {
  const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const millisOf = (id: string) => parseInt(id.replace(/-/g, "").slice(0, 12), 16);

  it("marks every id it makes as server-made, and no id of another shape", () => {
    for (let i = 0; i < 1000; i++) {
      const id = uuidv7(Date.UTC(2026, 11, 2) + i);
      expect(id.slice(14, 18)).toBe("7a10");
      expect(mayBeServerMade(id)).toBe(true);
      expect(millisOf(id)).toBe(Date.UTC(2026, 11, 2) + i);
    }
    for (const id of [
      "order-1",
      "0190c5e2-7b3a-7c10-8a2b-0123456789ab", // a client's UUIDv7 with other rand_a bits
      "0190C5E2-7B3A-7A10-8A2B-0123456789AB", // upper case is another id
      "0190c5e2-7b3a-7a10-ca2b-0123456789ab", // not the RFC variant
      "0190c5e2-7b3a-7a10-8a2b-0123456789ab0", // one character more
      "x0190c5e2-7b3a-7a10-8a2b-0123456789ab",
    ]) {
      expect(mayBeServerMade(id), id).toBe(false);
    }
  });

  it("has the UUID layout with version 7 and the RFC 9562 variant", () => {
    for (let i = 0; i < 1000; i++) {
      const id = uuidv7();
      expect(id).toMatch(FORMAT);
      const bytes = Buffer.from(id.replace(/-/g, ""), "hex");
      expect(bytes[6] >> 4).toBe(7);
      expect(bytes[8] >> 6).toBe(0b10);
    }
  });

  it("starts with the given millisecond timestamp, big-endian", () => {
    expect(uuidv7(0x0123456789ab).startsWith("01234567-89ab-7")).toBe(true);
    expect(uuidv7(0).startsWith("00000000-0000-7")).toBe(true);
    expect(uuidv7(2 ** 48 - 1).startsWith("ffffffff-ffff-7")).toBe(true);
  });

  it("defaults to the current time", () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    expect(millisOf(id)).toBeGreaterThanOrEqual(before);
    expect(millisOf(id)).toBeLessThanOrEqual(after);
  });

  it("sorts by timestamp", () => {
    const base = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: 300 }, (_, i) => uuidv7(base + i * 7));
    expect([...ids].sort()).toEqual(ids);
    const later = uuidv7(base + 1);
    const earlier = uuidv7(base);
    expect(earlier < later).toBe(true);
  });

  it("produces 10,000 distinct ids within one millisecond", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => uuidv7(1_767_225_600_000)));
    expect(ids.size).toBe(10_000);
  });

  it("does not change an id already returned when more are made", () => {
    const first = uuidv7(1);
    const copy = String(first);
    for (let i = 0; i < 600; i++) uuidv7(2);
    expect(first).toBe(copy);
    expect(millisOf(first)).toBe(1);
  });
});

describe("the event rules README documents", () => {
  it("are the rules src/ingest/rules.ts declares", async () => {
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { describeRules } = await import("../../src/ingest/rules.ts");
    const readme = readFileSync(join(import.meta.dirname, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Event rules"));
    const documented = section.slice(0, section.indexOf("\n#", 5)).split("\n").filter((line) => line.startsWith("| `"));
    expect(documented).toEqual(describeRules().map((r) => `| \`${r.field}\` | ${r.rule} |`));
  });
});

describe("insert row text", () => {
  /** The obvious form, through Date: what dateTime64 must equal. */
  const reference = (us: number) => {
    const ms = Math.floor(us / 1000);
    const iso = new Date(ms).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(us - ms * 1000).padStart(3, "0")}`;
  };

  it("writes DateTime64 text equal to the Date-based form, across days, years and before 1970", () => {
    const samples = [0, 1, 999_999, 1_000_000, 86_399_999_999, 86_400_000_000, -1, -86_400_000_001, 951_782_400_000_000, 4_102_444_799_999_999];
    let seed = 7;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      samples.push(Math.floor((seed / 2_147_483_648) * 4_000_000_000_000_000) - 100_000_000_000_000);
    }
    for (const us of samples) expect(dateTime64(us), String(us)).toBe(reference(us));
  });

  it("builds a row equal to the JSON array of its columns, with and without a chain link", () => {
    const record: EventRecord = {
      tenantId: "t\"1", id: "e\\1", timeUs: 1_795_449_556_717_123, utcOffsetMinutes: -330, type: "a.b", action: "CREATE",
      outcome: Outcome.FAILURE, severity: Severity.WARNING, actorId: "u\n1", actorType: "user", actorName: "Zoë", actorSessionId: "",
      actorIp: "::1", actorUserAgent: "curl", resourceType: "doc", resourceId: "d-1", resourceName: "", source: "svc", requestId: "r",
      message: "héllo \u2028 ✓", attributes: { k: "v\"", "a.b": "" }, before: "", after: '{"x":1}',
    };
    const columns = (link: unknown[]) => [
      "t\"1", "e\\1", dateTime64(record.timeUs), -330, "a.b", "CREATE", "FAILURE", "WARNING", "u\n1", "user", "Zoë", "", "::1", "curl",
      "doc", "d-1", "", "svc", "r", "héllo \u2028 ✓", { k: "v\"", "a.b": "" }, "", '{"x":1}', "2026-11-23 12:00:00.000001", 90, ...link,
    ];
    expect(JSON.parse(insertRowJson(record, "2026-11-23 12:00:00.000001", 90))).toEqual(columns(["", 0, "", "", "", ""]));
    const hash = "ab".repeat(32);
    const linked = { ...record, link: { chainId: "c\"1", seq: 12, prevHash: "0".repeat(64), hash, checkpoint: { signature: "s+/=", keyId: "k" } } };
    expect(JSON.parse(insertRowJson(linked, "2026-11-23 12:00:00.000001", 90))).toEqual(columns(["c\"1", 12, "0".repeat(64), hash, "s+/=", "k"]));
    // A queued event's row: its head from the arrival encoding (attributes in sorted order), its tail at commit.
    const queued = [record, linked].map((r) => ({ ...encodeOnArrival(r).record, link: r.link }));
    const body = encodedRowsBody(queued, (r) => insertRowTail(r.link, "2026-11-23 12:00:00.000001", 90)).toString();
    expect(body.endsWith("\n")).toBe(true);
    expect(body.slice(0, -1).split("\n").map((line) => JSON.parse(line))).toEqual([columns(["", 0, "", "", "", ""]), columns(["c\"1", 12, "0".repeat(64), hash, "s+/=", "k"])]);
  });
});

describe("GetStats rows encoded by hand", () => {
  it("are the bytes protobuf-es writes for the same answer", () => {
    const result: StatsResult = {
      rows: [
        { keys: ["billing.invoice.paid", "SUCCESS"], bucketStartUs: 1_795_449_600_000_000, count: 42n, other: false },
        { keys: ["", "ünïcødé ✓ 𝄞"], bucketStartUs: 0, count: 1n, other: false },
        { keys: ["x"], bucketStartUs: -86_400_000_000, count: 9_007_199_254_740_993n, other: false },
        { keys: ["y"], bucketStartUs: 1_500_000, count: 0n, other: false },
        { keys: [], count: 7n, other: true },
        // Keys and buckets repeated across rows: each is encoded once, then copied.
        { keys: ["billing.invoice.paid", "FAILURE"], bucketStartUs: 1_795_449_600_000_000, count: 128n, other: false },
        { keys: ["y", "SUCCESS"], bucketStartUs: 0, count: 300n, other: false },
        // Keys longer than 127 bytes (a two-byte length), and a row larger than the buffer the rows start with.
        { keys: Array.from({ length: 12 }, (_, k) => `${"é".repeat(150)}-${k}`), bucketStartUs: 3_600_000_000, count: -1n, other: false },
      ],
      total: 9_007_199_254_741_043n,
      fromRollup: true,
    };
    const ours = toBinary(GetStatsResponseWireSchema, encodedStatsResponse(result));
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(toBinary(GetStatsResponseSchema, statsResponse(result))).toString("hex"));
    expect(fromBinary(GetStatsResponseSchema, ours)).toEqual(statsResponse(result));
    // A lone surrogate is written as U+FFFD by both (so it does not round-trip).
    const surrogate: StatsResult = {
      rows: [
        { keys: ["\ud800", "SUCCESS"], bucketStartUs: 0, count: 300n, other: false },
        { keys: ["billing.invoice.paid", "\ud800"], bucketStartUs: 0, count: 1n, other: true },
      ],
      total: 301n,
      fromRollup: false,
    };
    expect(toBinary(GetStatsResponseWireSchema, encodedStatsResponse(surrogate))).toEqual(toBinary(GetStatsResponseSchema, statsResponse(surrogate)));
    const empty: StatsResult = { rows: [], total: 0n, fromRollup: false };
    expect(toBinary(GetStatsResponseWireSchema, encodedStatsResponse(empty))).toEqual(toBinary(GetStatsResponseSchema, statsResponse(empty)));
  });
});

describe("storage errors as Connect codes", () => {
  const log = pino({ level: "silent" });
  it.each([
    ["Code: 202. DB::Exception: Too many simultaneous queries. Maximum: 100. (TOO_MANY_SIMULTANEOUS_QUERIES)", "Unavailable"],
    ["Code: 252. DB::Exception: Too many parts (3000) in table 'default.events'. (TOO_MANY_PARTS)", "Unavailable"],
    ["Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)", "Unavailable"],
    ["Code: 47. DB::Exception: Unknown expression identifier `x`. (UNKNOWN_IDENTIFIER)", "Internal"],
  ])("%s → %s", (message, code) => {
    expect(Code[toConnectError(parseError(message), log).code]).toBe(code);
  });

  it("reports a query its caller aborted as canceled, in the answer and in the read's audit event", () => {
    const caller = new AbortController();
    caller.abort();
    expect(Code[toConnectError(caller.signal.reason, log).code]).toBe("Canceled");
    expect(failureOf(caller.signal.reason)).toEqual({ code: "canceled", message: "the caller canceled the call" });
  });

  it("treats a refused or reset connection to the server as unavailable", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8123"), { code: "ECONNREFUSED" });
    expect(toConnectError(refused, log).code).toBe(Code.Unavailable);
  });
});

describe("grpc-message escaped as the gRPC spec says", () => {
  const message = "limit reached (60 events; limits per tenant: 100/s, unlimited/s); retry in 0.2 s — 50% über\n";
  it("escapes only %, controls and bytes outside ASCII, so clients that unescape with decodeURI (grpc-js) read it whole", () => {
    const escaped = grpcMessageEscaped(message);
    expect(escaped).toBe("limit reached (60 events; limits per tenant: 100/s, unlimited/s); retry in 0.2 s %E2%80%94 50%25 %C3%BCber%0A");
    expect(decodeURI(escaped)).toBe(message);
    expect(decodeURIComponent(escaped)).toBe(message);
  });
});

describe("the store URL as the start-up log shows it", () => {
  it("leaves out user and password", () => {
    expect(withoutCredentials("http://writer:s3cret@clickhouse:8123/")).toBe("http://clickhouse:8123/");
    expect(withoutCredentials("https://clickhouse.internal:8443")).toBe("https://clickhouse.internal:8443/");
    expect(withoutCredentials("not a url")).toBe("(not a URL)");
  });
});
