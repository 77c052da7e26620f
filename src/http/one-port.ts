import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import type { connectNodeAdapter } from "@connectrpc/connect-node";

/** The request handler Connect builds, serving HTTP/1.1 and HTTP/2 alike. */
export type RequestHandler = ReturnType<typeof connectNodeAdapter>;
export type NodeServerRequest = Parameters<RequestHandler>[0];
export type NodeServerResponse = Parameters<RequestHandler>[1];

export interface Listener {
  port: number;
  /** Stops accepting connections; open HTTP/2 sessions get GOAWAY and finish their streams. */
  stopAccepting(): void;
  /** Cuts every remaining connection. */
  destroyAll(): void;
}

/** Every HTTP/2 connection starts with this preface; no HTTP/1 method does. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

/**
 * One port for every protocol. Without TLS, HTTP/2 (gRPC, h2c clients) and
 * HTTP/1.1 (curl, browsers, Connect JSON) are told apart by the first bytes
 * of the connection, since cleartext has no ALPN. With TLS, ALPN decides.
 */
export type UpgradeHandler = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void;

export async function listenOnePort(options: {
  handler: RequestHandler;
  /** HTTP/1.1 `Upgrade` requests (WebSocket). */
  upgrade: UpgradeHandler;
  port: number;
  host: string;
  tls?: { certFile: string; keyFile: string };
}): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  let outer: net.Server;
  let h1: http.Server | undefined;

  if (options.tls) {
    const secure = http2.createSecureServer(
      { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile), allowHTTP1: true },
      options.handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
    );
    secure.on("session", (s) => trackSession(s));
    // HTTP/1.1 connections on a secure HTTP/2 server with allowHTTP1 emit upgrades here.
    secure.on("upgrade", options.upgrade);
    outer = secure;
  } else {
    h1 = http.createServer(options.handler as unknown as http.RequestListener);
    h1.on("upgrade", options.upgrade);
    // Longer than the idle timeouts of common load balancers (60 s), so the
    // server is not the side that closes a connection a client is reusing.
    h1.keepAliveTimeout = 65_000;
    const h2 = http2.createServer({}, options.handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    h2.on("session", (s) => trackSession(s));
    const plain = h1;
    outer = net.createServer((socket) => sniff(socket, plain, h2));
  }
  outer.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  function trackSession(session: http2.Http2Session) {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  }

  await new Promise<void>((resolve, reject) => {
    outer.once("error", reject);
    outer.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (outer.address() as AddressInfo).port,
    stopAccepting() {
      outer.close();
      for (const session of sessions) session.close();
      h1?.closeIdleConnections();
    },
    destroyAll() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** A connection that says nothing this long is dropped before it holds a descriptor forever. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

function sniff(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let head = Buffer.alloc(0);
  socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const isH2 = head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE.subarray(0, Math.min(head.length, H2_PREFACE.length)));
    if (isH2 && head.length < H2_PREFACE.length) return; // not enough bytes to decide yet
    socket.off("data", onData);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(head);
    (isH2 ? h2 : h1).emit("connection", socket);
    process.nextTick(() => socket.resume());
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}
