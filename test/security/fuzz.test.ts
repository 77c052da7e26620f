/**
 * A bounded fuzz run against the request decoders of IngestService/Append and
 * QueryService/SearchEvents on a live server, over the Connect protocol
 * (application/proto and application/json): random bytes, mutations of valid
 * encodings (bit flips, truncation, duplication, splicing, corrupted length
 * prefixes, odd tags), mutated JSON (wrong types, unknown and prototype keys,
 * edge numbers, deep nesting, broken text and UTF-8), some gzip-compressed.
 *
 * Every answer must be a success that decodes as the response message, or a
 * proper Connect error (the status of its code, a JSON body {code, message})
 * with a code that is the client's to fix: never INTERNAL or UNKNOWN, never a
 * hang, never a crash. Inputs are a pure function of (seed, index): set
 * FUZZ_SEED and FUZZ_INPUTS to rerun, FUZZ_ONLY=<index> to send one input.
 */
import { readFileSync } from "node:fs";
import * as http from "node:http";
import { brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { fromBinary, fromJson, type DescMessage } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppendResponseSchema } from "../../gen/auditlog/v1/ingest_pb.js";
import { SearchEventsResponseSchema } from "../../gen/auditlog/v1/query_pb.js";
import { bearer, connectClients } from "../helpers/clients.ts";
import { removeDataDir, startServer, type TestServer } from "../helpers/server.ts";
import { describeInput, fuzzInput, type FuzzInput } from "./fuzz-inputs.ts";
import { CONNECT_CODES, CONNECT_STATUS, healthz } from "./support.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed2026);
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 100_000);
const ONLY = process.env.FUZZ_ONLY === undefined ? undefined : Number(process.env.FUZZ_ONLY);
const CONCURRENCY = 64;
const REQUEST_TIMEOUT_MS = 15_000;

/** Codes that mean the server failed, not the client: a fuzz input must never get one. */
const SERVER_FAULTS = new Set(["internal", "unknown", "data_loss"]);

const PATHS = { Append: "/auditlog.v1.IngestService/Append", SearchEvents: "/auditlog.v1.QueryService/SearchEvents" } as const;
const RESPONSES: Record<FuzzInput["rpc"], DescMessage> = { Append: AppendResponseSchema, SearchEvents: SearchEventsResponseSchema };

let server: TestServer;
let tokens: Record<"writer" | "auditor" | "garbage", string>;
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

beforeAll(async () => {
  // Batches wait up to 0.5 s (reads' audit events 1 s) and commits skip fsync:
  // the run measures the decoders, not the disk.
  server = await startServer({ env: { AUDITLOG_READ_AUDIT_DELAY_MS: "1000", AUDITLOG_BATCH_MAX_DELAY_MS: "500", AUDITLOG_FSYNC: "false" } });
  tokens = {
    writer: await server.token("fz", ["writer"]),
    auditor: await server.token("fz", ["auditor"]),
    garbage: "eyJhbGciOiJub25lIn0.e30.",
  };
});
afterAll(async () => {
  agent.destroy();
  await server.stop();
  removeDataDir(server.dataDir);
});

/** User + system CPU seconds a process has used so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

interface Answer {
  status: number;
  contentType: string;
  /** The body as sent, decompressed when the server compressed it (it may answer a gzip request in gzip). */
  body: Buffer;
}

function decompressed(body: Buffer, encoding: string | undefined): Buffer {
  if (encoding === "gzip") return gunzipSync(body);
  if (encoding === "br") return brotliDecompressSync(body);
  return body;
}

function send(input: FuzzInput): Promise<Answer | { error: string }> {
  const headers: Record<string, string | number> = {
    "content-type": input.encoding === "proto" ? "application/proto" : "application/json",
    "content-length": input.body.length,
    ...input.headers,
  };
  if (input.token !== "none") headers.authorization = `Bearer ${tokens[input.token]}`;
  if (input.gzip) headers["content-encoding"] = "gzip";
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, method: "POST", path: PATHS[input.rpc], agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body: decompressed(Buffer.concat(chunks), res.headers["content-encoding"]) });
        } catch (err) {
          resolve({ error: `the answer's ${res.headers["content-encoding"]} body does not decompress: ${(err as Error).message}` });
        }
      });
      res.on("error", (err) => resolve({ error: `response failed: ${err.message}` }));
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", (err) => resolve({ error: err.message }));
    req.end(input.body);
  });
}

/** The distribution key of an answer, or the problem with it. */
function judge(input: FuzzInput, answer: Answer | { error: string }): { key: string; problem?: string } {
  const where = `${input.rpc}/${input.encoding}`;
  if ("error" in answer) return { key: `${where} transport-error`, problem: answer.error };
  if (answer.status === 200) {
    try {
      if (input.encoding === "proto") {
        if (!answer.contentType.startsWith("application/proto")) throw new Error(`content-type ${answer.contentType}`);
        fromBinary(RESPONSES[input.rpc], answer.body);
      } else {
        if (!answer.contentType.startsWith("application/json")) throw new Error(`content-type ${answer.contentType}`);
        fromJson(RESPONSES[input.rpc], JSON.parse(answer.body.toString("utf8")));
      }
    } catch (err) {
      return { key: `${where} 200-undecodable`, problem: `200 with a body that is not the response message: ${(err as Error).message}` };
    }
    return { key: `${where} ok` };
  }
  let error: { code?: unknown; message?: unknown };
  try {
    error = JSON.parse(answer.body.toString("utf8"));
  } catch {
    return { key: `${where} ${answer.status}-not-json`, problem: `HTTP ${answer.status} with a body that is not JSON: ${answer.body.subarray(0, 200).toString("utf8")}` };
  }
  const code = String(error.code);
  if (!(CONNECT_CODES as readonly string[]).includes(code) || typeof error.message !== "string") {
    return { key: `${where} ${answer.status}-bad-error`, problem: `HTTP ${answer.status} with an error body that is not {code, message}: ${answer.body.subarray(0, 200).toString("utf8")}` };
  }
  if (CONNECT_STATUS[code] !== answer.status) return { key: `${where} ${code}`, problem: `code ${code} came with HTTP ${answer.status}, not ${CONNECT_STATUS[code]}` };
  // Which layer said no: the decoder, or the service after decoding.
  const layer = code === "invalid_argument" ? (/protobuf|JSON|json|decode|parse|UTF-8|utf-8|unexpected|compress/.test(error.message) ? ":decode" : ":validation") : "";
  if (SERVER_FAULTS.has(code)) {
    const what = error.message.replace(/reference \w+/, "reference …").slice(0, 40);
    return { key: `${where} ${code} (${what})`, problem: `${code}: ${error.message}` };
  }
  return { key: `${where} ${code}${layer}` };
}

describe("what fuzzing found, pinned down", () => {
  it("an event nested deeper than protobuf readers accept is refused at ingest, or reads back: it cannot make a tenant's searches undecodable", async () => {
    // 60 JSON arrays: 121 protobuf message levels (Value, ListValue, ...), past the 100 most protobuf runtimes read.
    const deep = `${"[".repeat(60)}1${"]".repeat(60)}`;
    const writer = await server.token("fz-deep", ["writer"]);
    const auditor = await server.token("fz-deep", ["auditor"]);
    const body = `{"events":[{"id":"deep-1","type":"fz.deep","action":"CREATE","actor":{"id":"u"},"before":{"x":${deep}}},{"id":"flat-1","type":"fz.flat","action":"CREATE","actor":{"id":"u"}}]}`;
    const res = await fetch(`${server.baseUrl}${PATHS.Append}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${writer}` }, body });
    expect(res.status).toBe(200);
    const appended = await res.json();
    // Either the deep event is rejected on its own (its neighbour stored), or both are stored.
    if (appended.acceptedCount === "1") expect(appended.rejections).toEqual([expect.objectContaining({ field: "before", code: "invalid_argument" })]);
    else expect(appended.acceptedCount).toBe("2");
    // Whatever was stored, a binary reader must be able to read the tenant's events.
    for (const protocol of ["connect-binary", "grpc"] as const) {
      const clients = connectClients(server.baseUrl, protocol);
      const page = await clients.query.searchEvents({ filter: { types: ["fz.deep", "fz.flat"] } }, bearer(auditor));
      expect(page.events.map((e) => e.id), protocol).toContain("flat-1");
    }
  });

  it("a truncated gzip body is INVALID_ARGUMENT (the client's mistake), not INTERNAL", async () => {
    const zipped = gzipSync(Buffer.from(JSON.stringify({ events: [{ type: "fz.zip", action: "CREATE", actor: { id: "u" } }] })));
    for (const body of [zipped.subarray(0, zipped.length - 6), zipped.subarray(0, 12), Buffer.from("not gzip at all")]) {
      const res = await fetch(`${server.baseUrl}${PATHS.Append}`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${tokens.writer}` },
        body,
      });
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 400, body: { code: "invalid_argument", message: expect.any(String) } });
    }
  });
});

describe("fuzzing the decoders of Append and SearchEvents", () => {
  it(`answers ${ONLY === undefined ? INPUTS.toLocaleString("en") : "one"} random and mutated requests with successes or proper Connect errors, and survives`, { timeout: 240_000 }, async () => {
    const indexes = ONLY === undefined ? Array.from({ length: INPUTS }, (_, i) => i) : [ONLY];
    const counts = new Map<string, number>();
    const kinds = new Map<string, number>();
    /** Bad answers grouped by what was wrong: how many, and the first few inputs that got one. */
    const problems = new Map<string, { count: number; examples: string[] }>();
    let next = 0;
    const started = performance.now();
    const clientCpu = process.cpuUsage();
    const serverCpu = cpuSeconds(server.pid);
    const worker = async () => {
      while (next < indexes.length) {
        const index = indexes[next++];
        const input = fuzzInput(SEED, index);
        const verdict = judge(input, await send(input));
        counts.set(verdict.key, (counts.get(verdict.key) ?? 0) + 1);
        const strategy = `${input.kind.split("+")[0].replace(/-\d+$/, "")} ${verdict.key.split(" ").slice(1).join(" ")}`;
        kinds.set(strategy, (kinds.get(strategy) ?? 0) + 1);
        if (verdict.problem) {
          const what = verdict.problem.replace(/reference \w+/, "reference …").replace(/\d+/g, "N").slice(0, 160);
          const entry = problems.get(what) ?? problems.set(what, { count: 0, examples: [] }).get(what)!;
          entry.count++;
          if (entry.examples.length < 3) entry.examples.push(describeInput(SEED, index, input));
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (performance.now() - started) / 1000;
    const client = process.cpuUsage(clientCpu);
    const cpu = `CPU: this process ${((client.user + client.system) / 1e6).toFixed(1)} s, the server ${(cpuSeconds(server.pid) - serverCpu).toFixed(1)} s`;

    const table = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${k.padEnd(48)} ${String(n).padStart(7)}`);
    console.log(
      [
        `fuzz: seed ${SEED}, ${indexes.length} inputs, ${CONCURRENCY} in flight, ${seconds.toFixed(1)} s (${Math.round(indexes.length / seconds)}/s); ${cpu}`,
        "answers:",
        ...table,
        "answers by strategy:",
        ...[...kinds.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${k.padEnd(48)} ${String(n).padStart(7)}`),
      ].join("\n"),
    );

    // The process is still the one that started, and still serves.
    expect(() => process.kill(server.pid, 0)).not.toThrow();
    expect(await healthz(server.baseUrl)).toBe(200);
    const clients = connectClients(server.baseUrl, "connect-binary");
    const appended = await clients.ingest.append({ events: [{ id: "after-fuzz", type: "fz.after", action: "CREATE", actor: { id: "u" } }] }, bearer(tokens.writer));
    expect(appended.acceptedCount).toBe(1n);
    const found = await clients.query.searchEvents({ filter: { types: ["fz.after"] } }, bearer(tokens.auditor));
    expect(found.events.map((e) => e.id)).toEqual(["after-fuzz"]);
    // Nothing the fuzz sent made the server log an unexpected error.
    const faults = server.logs.filter((l) => Number(l.level) >= 50);
    expect(faults.map((l) => JSON.stringify(l).slice(0, 400))).toEqual([]);
    // Every answer was a success or a proper Connect error of the client's making.
    const report = [...problems.entries()].map(([what, { count, examples }]) => `${count} × ${what}\n      e.g. ${examples.join("\n      e.g. ")}`);
    expect(report, `bad answers; rerun one with FUZZ_SEED=${SEED} FUZZ_ONLY=<index>`).toEqual([]);
  });

  it("refuses a gzip bomb (1 GiB of zeros in about 1 MiB) with RESOURCE_EXHAUSTED, and keeps serving", async () => {
    const member = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const bomb = Buffer.concat(Array.from({ length: 16 }, () => member));
    for (const contentType of ["application/proto", "application/json"]) {
      const res = await fetch(`${server.baseUrl}${PATHS.Append}`, {
        method: "POST",
        headers: { "content-type": contentType, "content-encoding": "gzip", authorization: `Bearer ${tokens.writer}` },
        body: bomb,
      });
      expect(res.status).toBe(429);
      expect(await res.json()).toEqual({ code: "resource_exhausted", message: expect.stringContaining("after decompression") });
    }
    expect(await healthz(server.baseUrl)).toBe(200);
  });
});
