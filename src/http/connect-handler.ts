import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, readAllBytes, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { Logger } from "pino";
import type { IncomingMessage } from "node:http";
import type { NodeServerRequest, NodeServerResponse, RequestHandler } from "./one-port.ts";

/**
 * Connect serves a request whose protobuf body does not decode with code
 * INTERNAL ("parse binary: ..."), and decodes unary requests before any
 * interceptor runs. A client that sends garbage made a mistake the server did
 * not, so these become INVALID_ARGUMENT here, in each protocol's own framing:
 * the Connect status and JSON body, the gRPC trailer, the gRPC-Web trailer frame.
 * (Streamed messages decode inside the interceptors; errors.ts maps those.)
 */
export const DECODE_FAILURE_PREFIX = "parse binary: ";
const decodeMessage = (detail: string) =>
  `the request is not a valid protobuf message for this method (${detail}); check the client uses the current proto/auditlog/v1 contracts`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function reclassifyConnectUnary(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (res.status !== 500 || !res.body || !(Symbol.asyncIterator in Object(res.body))) return res;
  const bytes = await readAllBytes(res.body as AsyncIterable<Uint8Array>, Number.MAX_SAFE_INTEGER);
  let body = bytes;
  let status = res.status;
  try {
    const error = JSON.parse(decoder.decode(bytes)) as { code?: string; message?: string };
    if (error.code === "internal" && error.message?.startsWith(DECODE_FAILURE_PREFIX)) {
      status = 400;
      body = encoder.encode(
        JSON.stringify({ code: "invalid_argument", message: decodeMessage(error.message.slice(DECODE_FAILURE_PREFIX.length)) }),
      );
    }
  } catch {
    // Not a Connect JSON error body: pass it through untouched.
  }
  const header = new Headers(res.header);
  if (header.has("content-length")) header.set("content-length", String(body.byteLength));
  return { ...res, status, header, body: createAsyncIterable([body]) };
}

/**
 * grpc-message escaped as the gRPC spec says: only "%" and bytes outside
 * printable ASCII. Connect escapes it as encodeURIComponent does, and grpc-js
 * unescapes with decodeURI, which leaves "%3B", "%3A", "%2F", "%2C" … in what
 * its users read for ";", ":", "/", ",". Spec-escaped text reads right in
 * both (and in every client that follows the spec).
 */
export function grpcMessageEscaped(message: string): string {
  let out = "";
  for (const byte of encoder.encode(message)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * gRPC carries the status in trailers (or headers, trailers-only); both are
 * read after the body. Returns whether it changed anything.
 */
function fixGrpcStatus(headers: Headers | undefined): boolean {
  const escaped = headers?.get("grpc-message");
  if (!headers || escaped == null) return false;
  let message: string;
  try {
    message = decodeURIComponent(escaped);
  } catch {
    return false;
  }
  if (headers.get("grpc-status") === "13" && message.startsWith(DECODE_FAILURE_PREFIX)) {
    headers.set("grpc-status", "3");
    message = decodeMessage(message.slice(DECODE_FAILURE_PREFIX.length));
  }
  const respelled = grpcMessageEscaped(message);
  if (respelled === escaped && headers.get("grpc-status") !== "3") return false;
  headers.set("grpc-message", respelled);
  return true;
}

/** gRPC-Web puts the trailer in the body, as a frame whose flag byte has 0x80 set. */
function fixGrpcWebTrailerFrame(chunk: Uint8Array): Uint8Array {
  if (chunk.byteLength < 5 || (chunk[0] & 0x80) === 0) return chunk;
  const text = decoder.decode(chunk.subarray(5));
  const headers = new Headers();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  if (!fixGrpcStatus(headers)) return chunk;
  let out = "";
  headers.forEach((value, key) => (out += `${key}: ${value}\r\n`));
  const payload = encoder.encode(out);
  const frame = new Uint8Array(5 + payload.byteLength);
  frame[0] = chunk[0];
  new DataView(frame.buffer).setUint32(1, payload.byteLength);
  frame.set(payload, 5);
  return frame;
}

async function reclassifyDecodeFailures(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const contentType = new Headers(res.header).get("content-type") ?? "";
  if (contentType.startsWith("application/grpc-web")) {
    const body = res.body as AsyncIterable<Uint8Array> | undefined;
    if (!body) return res;
    return { ...res, body: (async function* () { for await (const chunk of body) yield fixGrpcWebTrailerFrame(chunk); })() };
  }
  if (contentType.startsWith("application/grpc")) {
    const body = res.body as AsyncIterable<Uint8Array> | undefined;
    const header = res.header instanceof Headers ? res.header : undefined;
    const trailer = res.trailer instanceof Headers ? res.trailer : undefined;
    return {
      ...res,
      body: (async function* () {
        if (body) yield* body;
        fixGrpcStatus(trailer);
        fixGrpcStatus(header);
      })(),
    };
  }
  return reclassifyConnectUnary(res);
}

/** How long an answer waits for the rest of a request body it did not need (an early refusal). */
const DRAIN_MAX_MS = 5000;

/**
 * HTTP/1.1 has one stream per connection: an answer sent while the client is
 * still sending its body races with it (the client may fail its write before
 * it reads the answer, or reuse a connection the server is about to close).
 * So an early answer waits until the unread body has arrived and been
 * discarded, up to DRAIN_MAX_MS; past that, the server closes the connection
 * after answering (src/server.ts). HTTP/2 streams need none of this.
 */
function unreadBodyDrained(req: NodeServerRequest): Promise<void> {
  if ("stream" in req || req.complete || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, DRAIN_MAX_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    req.once("end", done);
    req.once("close", done);
    req.resume();
  });
}

/**
 * An HTTP/1.1 request body that a reader may stop reading (a body found too
 * large part-way) without destroying the request: Node's own iterator would,
 * and with it the socket, so the client got EPIPE while still sending instead
 * of the answer (about one in ten such refusals under load). The rest is
 * drained by `unreadBodyDrained` before the answer goes out.
 */
function keptOpenBody(req: NodeServerRequest): AsyncIterable<Uint8Array> {
  return { [Symbol.asyncIterator]: () => (req as IncomingMessage).iterator({ destroyOnReturn: false }) };
}

/**
 * protobuf-es keeps map fields in plain objects, where an entry "__proto__"
 * silently vanishes: an attribute would be lost, and a filter on it would
 * match everything. So requests carrying the key are refused before
 * protobuf-es decodes them: JSON bodies holding `"__proto__"`, and binary
 * ones holding a map entry whose key it is (field 1 of 9 bytes). Compressed
 * bodies and messages are checked once decompressed (`checkedCompression`).
 * Binary requests our own decoder reads (`ownDecoderServices`) are left to
 * it: it refuses the key itself, event by event.
 */
const KEY_IN_JSON = Buffer.from('"__proto__"');
const KEY_IN_PROTO = Buffer.concat([Buffer.from([0x0a, 0x09]), Buffer.from("__proto__")]);
const protoKeyRefused = () =>
  new ConnectError('the key "__proto__" is not accepted (no attribute or map key may be named so)', Code.InvalidArgument);

function refuseProtoKey(body: UniversalServerRequest["body"], key: Buffer): UniversalServerRequest["body"] {
  if (!(Symbol.asyncIterator in Object(body))) return body;
  return (async function* () {
    let tail = new Uint8Array(0);
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      const window = new Uint8Array(tail.byteLength + chunk.byteLength);
      window.set(tail);
      window.set(chunk, tail.byteLength);
      if (Buffer.from(window.buffer, window.byteOffset, window.byteLength).includes(key)) throw protoKeyRefused();
      tail = window.subarray(Math.max(0, window.byteLength - key.byteLength + 1));
      yield chunk;
    }
  })();
}

/**
 * A body that does not decompress is the client's mistake (Connect says
 * INTERNAL); a body that decompresses beyond the limit stays
 * RESOURCE_EXHAUSTED. What decompresses is checked for `key` (see KEY_IN_JSON).
 */
function checkedCompression(compression: Compression, key: Buffer | undefined): Compression {
  return {
    ...compression,
    async decompress(bytes, readMaxBytes) {
      let plain: Awaited<ReturnType<Compression["decompress"]>>;
      try {
        plain = await compression.decompress(bytes, readMaxBytes);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.ResourceExhausted) throw err;
        throw new ConnectError(`the request body is not valid ${compression.name}; send it uncompressed or compress it whole`, Code.InvalidArgument);
      }
      if (key && Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength).includes(key)) throw protoKeyRefused();
      return plain;
    },
  };
}

/**
 * The Node request handler for every RPC: Connect's router and its Node
 * bridge, as `connectNodeAdapter` wires them, plus the decode-failure
 * reclassification above. Unknown paths go to `fallback` (plain routes).
 */
export function createRpcHandler(
  options: ConnectRouterOptions & {
    routes: (router: ConnectRouter) => void;
    /**
     * Services registered again under wire-compatible descriptors whose hot
     * messages stay encoded for our own codec (src/ingest/ingest-wire-schema.ts):
     * they serve the requests in the binary encoding, `routes` the JSON ones.
     */
    binaryRoutes?: (router: ConnectRouter) => void;
    /** Services (type names) whose binary requests our own decoder reads; see KEY_IN_JSON. */
    ownDecoderServices?: string[];
    fallback: RequestHandler;
    log: Logger;
    /** Per-request values for the handlers (e.g. the peer address). */
    contextValues?: (req: NodeServerRequest) => ContextValues;
  },
): RequestHandler {
  // One router per way of checking for "__proto__"; the routes are the same.
  const handlersOf = (routes: ((router: ConnectRouter) => void) | undefined, key: Buffer | undefined) => {
    const acceptCompression = [checkedCompression(compressionGzip, key), checkedCompression(compressionBrotli, key)];
    const router = createConnectRouter({ acceptCompression, ...options });
    routes?.(router);
    return new Map(router.handlers.map((h) => [h.requestPath, h]));
  };
  const jsonHandlers = handlersOf(options.routes, KEY_IN_JSON);
  const protoHandlers = handlersOf(options.routes, KEY_IN_PROTO);
  const wireHandlers = handlersOf(options.binaryRoutes, KEY_IN_PROTO);
  const ownDecoderHandlers = handlersOf(options.binaryRoutes, undefined);
  const ownDecoders = new Set(options.ownDecoderServices ?? []);
  return (req: NodeServerRequest, res: NodeServerResponse) => {
    const path = (req.url ?? "").split("?", 1)[0];
    // Connect GET requests (idempotent RPCs) name their encoding in the query instead.
    const json = /json/i.test(req.headers["content-type"] ?? "") || (req.method === "GET" && /[?&]encoding=json(&|$)/.test(req.url ?? ""));
    let handler = json ? jsonHandlers.get(path) : (wireHandlers.get(path) ?? protoHandlers.get(path));
    let key: Buffer | undefined = json ? KEY_IN_JSON : KEY_IN_PROTO;
    if (!json && handler && ownDecoders.has(handler.service.typeName)) {
      handler = ownDecoderHandlers.get(path);
      key = undefined;
    }
    if (!handler) return options.fallback(req, res);
    let uReq;
    try {
      uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    } catch (err) {
      // E.g. an HTTP/1.0 request without Host: Connect cannot build a URL.
      // Answer it instead of letting the throw escape the request listener.
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "invalid_argument", message: `malformed HTTP request: ${(err as Error).message}` }));
      return;
    }
    if (!("stream" in req) && Symbol.asyncIterator in Object(uReq.body)) uReq = { ...uReq, body: keptOpenBody(req) };
    if (key) uReq = { ...uReq, body: refuseProtoKey(uReq.body, key) };
    handler(uReq)
      .then(reclassifyDecodeFailures)
      .then(async (uRes) => {
        await unreadBodyDrained(req);
        return universalResponseToNodeResponse(uRes, res);
      })
      .catch((err) => options.log.warn({ err, rpc: handler.method.name }, "response could not be written"));
  };
}
