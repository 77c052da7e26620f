/**
 * One load-generating client process: streams realistic events to a running
 * server over gRPC (HTTP/2, @grpc/grpc-js) and prints one JSON line: how many
 * events were acknowledged, and each stream's ack latency: from the end of
 * the stream (its last event sent) to the server's acknowledgement.
 *
 *   node --import tsx bench/load-client.ts URL TOKEN EVENTS STREAMS PER_MESSAGE [RATE] [MODE]
 *
 * MODE `grpc` (default): Ingest client streams, STREAMS of them one after
 * another, each of 20 messages; `grpc-open`: open loop at RATE, for latency:
 * a stream of one message starts every PER_MESSAGE / RATE seconds whatever
 * the streams before it are doing (as a service flushing its buffer would),
 * latency = its scheduled start → its acknowledgement, so a slow answer
 * delays no later send and is not hidden (no coordinated omission); the
 * first 3 s of streams are a warm-up, sent at the same rate, not measured;
 * `append-json`: unary Append calls in Connect JSON over HTTP/1.1 keep-alive
 * (what curl users send), STREAMS of them in flight, latency = request → answer.
 *
 * Encoding protobuf costs a JS client more CPU than the server spends storing
 * the events, so a pool of requests is encoded once and the bytes are sent
 * again and again (ids are left to the server, so repeats are new events).
 *
 * Start-up is kept out of the measurement: the process prints `ready` once
 * its requests are encoded (and, over gRPC, its channel is connected), and
 * starts when a line arrives on its stdin. The JSON line reports the time to
 * its last acknowledgement and the CPU it spent from then on.
 */
import { create, fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { EventSchema } from "../gen/auditlog/v1/event_pb.js";
import { AppendRequestSchema, IngestRequestSchema, IngestResponseSchema, type IngestResponse } from "../gen/auditlog/v1/ingest_pb.js";
import { realisticEvent } from "./realistic-events.ts";

const [url, token, eventsArg, streamsArg, perMessageArg, rateArg, modeArg] = process.argv.slice(2);
const mode = modeArg ?? "grpc";
const totalEvents = Number(eventsArg);
const streams = Number(streamsArg);
const perMessage = Number(perMessageArg);
/** Events per second for this process; 0 = as fast as possible. */
const rate = Number(rateArg ?? 0);
/** Each stream sends this many messages, then ends and waits for its ack. */
const MESSAGES_PER_STREAM = 20;
const POOL = 40;
/**
 * The open loop's first seconds are sent at the same rate but not measured:
 * a fresh server's first streams pay for its JIT, its connection and the
 * store's first parts (about 1 s each for the first few streams of each
 * client, which alone made the p99 of 400 samples).
 */
const OPEN_LOOP_WARMUP_MS = 3000;

const pool = Array.from({ length: POOL }, (_, m) =>
  Buffer.from(
    toBinary(
      IngestRequestSchema,
      create(IngestRequestSchema, {
        events: Array.from({ length: perMessage }, (_, i) => create(EventSchema, realisticEvent(process.pid * 1e6 + m * perMessage + i))),
      }),
    ),
  ),
);

const client = new grpc.Client(new URL(url).host, grpc.credentials.createInsecure(), {
  "grpc.max_send_message_length": 64 * 1024 * 1024,
});
const metadata = new grpc.Metadata();
metadata.set("authorization", `Bearer ${token}`);

const jsonPool = mode === "append-json" ? pool.map((b) => toJsonString(AppendRequestSchema, create(AppendRequestSchema, { events: fromBinary(IngestRequestSchema, b).events }))) : [];

// Ready (modules loaded, requests encoded and, over gRPC, the channel
// connected: about 3 s of CPU), then wait for the harness's "go", so that one client's start-up
// neither counts in the measured time nor competes with another's load.
if (mode !== "append-json") await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
process.stdout.write("ready\n");
await new Promise((resolve) => process.stdin.once("data", resolve));
process.stdin.pause();

const latenciesMs: number[] = [];
let sent = 0;
let acked = 0;
const started = performance.now();
const cpuAtStart = process.cpuUsage();

/** One Ingest stream of `messages` messages; its latency counts from `since` (default: its last message sent). */
async function ingestOnce(messages: number, offset: number, since?: number, measured = true): Promise<IngestResponse> {
  let endedAt = since ?? 0;
  return new Promise<IngestResponse>((resolve, reject) => {
    const call = client.makeClientStreamRequest<Buffer, IngestResponse>(
      "/auditlog.v1.IngestService/Ingest",
      (b) => b,
      (b) => fromBinary(IngestResponseSchema, b),
      metadata,
      (err, res) => {
        if (err) return reject(err);
        if (measured) latenciesMs.push(performance.now() - endedAt);
        resolve(res!);
      },
    );
    (async () => {
      for (let m = 0; m < messages; m++) {
        sent += perMessage;
        // Paced here in the closed loop; the open loop paces its streams itself.
        if (rate > 0 && since === undefined) {
          const wait = started + (sent / rate) * 1000 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        if (!call.write(pool[(offset + m) % POOL])) await new Promise((r) => call.once("drain", r));
      }
      if (since === undefined) endedAt = performance.now();
      call.end();
    })().catch(reject);
  });
}

async function worker(w: number) {
  const perStream = perMessage * MESSAGES_PER_STREAM;
  for (let offset = w * perStream; offset < totalEvents; offset += streams * perStream) {
    const messages = Math.min(MESSAGES_PER_STREAM, Math.ceil((totalEvents - offset) / perMessage));
    const res = await ingestOnce(messages, offset / perMessage);
    acked += Number(res.acceptedCount);
  }
}

async function openLoop() {
  const streamsDue = Math.ceil(totalEvents / perMessage);
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < streamsDue; i++) {
    const due = started + ((i * perMessage) / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(ingestOnce(1, i, due, due - started >= OPEN_LOOP_WARMUP_MS).then((res) => void (acked += Number(res.acceptedCount))));
  }
  await Promise.all(inFlight);
}

async function appendWorker(w: number) {
  for (let offset = w * perMessage; offset < totalEvents; offset += streams * perMessage) {
    sent += perMessage;
    if (rate > 0) {
      const wait = started + (sent / rate) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const begun = performance.now();
    const res = await fetch(`${url}/auditlog.v1.IngestService/Append`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: jsonPool[(offset / perMessage) % POOL],
    });
    const body = (await res.json()) as { acceptedCount?: string; message?: string };
    if (!res.ok) throw new Error(`Append answered ${res.status}: ${body.message}`);
    latenciesMs.push(performance.now() - begun);
    acked += Number(body.acceptedCount ?? 0);
  }
}

if (mode === "grpc-open") {
  if (!(rate > 0)) throw new Error("grpc-open needs a RATE");
  await openLoop();
} else {
  await Promise.all(Array.from({ length: streams }, (_, w) => (mode === "append-json" ? appendWorker(w) : worker(w))));
}
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuAtStart);
client.close();
process.stdout.write(JSON.stringify({ acked, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, latenciesMs }) + "\n");
