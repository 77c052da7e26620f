import { toJson, type JsonObject } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { TailEventsResponseSchema, type TailEventsRequest } from "../../gen/auditlog/v1/query_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TailEventsRequestSchema } from "../../gen/auditlog/v1/query_pb.js";
import { bearer, type connectClients } from "./clients.ts";

/** A tail response in Connect JSON: what the RPC sends and each WebSocket frame holds. */
export type TailMessage = JsonObject & {
  events?: JsonObject[];
  cursor?: string;
  live?: boolean;
  lag?: { skippedCount: string; resumeCursor: string };
  error?: { code: string; message: string };
};

/**
 * Collects a tail's messages as they arrive, whichever transport carries
 * them, and lets a test await a condition on what has arrived so far.
 */
export class TailCollector {
  readonly messages: TailMessage[] = [];
  readonly events: JsonObject[] = [];
  ended: { error?: unknown } | undefined;
  #waiters: { check: () => boolean; resolve: () => void; reject: (e: unknown) => void }[] = [];

  push(message: TailMessage): void {
    this.messages.push(message);
    this.events.push(...(message.events ?? []));
    this.#settle();
  }

  end(error?: unknown): void {
    this.ended = { error };
    this.#settle();
  }

  /** Resolves once `check` holds; rejects if the tail ends first. */
  until(check: (c: TailCollector) => boolean): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ check: () => check(this), resolve, reject });
      this.#settle();
    });
  }

  get live(): boolean {
    return this.messages.some((m) => m.live);
  }

  #settle() {
    for (const w of [...this.#waiters]) {
      if (w.check()) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      } else if (this.ended) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.reject(new Error(`the tail ended first: ${String(this.ended.error ?? "normally")}`));
      }
    }
  }
}

/** A tail over a generated Connect client; `close()` cancels it. */
export function connectTail(
  clients: ReturnType<typeof connectClients>,
  token: string,
  req: MessageInitShape<typeof TailEventsRequestSchema> = {},
) {
  const abort = new AbortController();
  const collector = new TailCollector();
  void (async () => {
    try {
      for await (const msg of clients.query.tailEvents(req as TailEventsRequest, { ...bearer(token), signal: abort.signal })) {
        collector.push(toJson(TailEventsResponseSchema, msg) as TailMessage);
      }
      collector.end();
    } catch (err) {
      collector.end(err);
    }
  })();
  return { collector, close: () => abort.abort() };
}

/** A tail over the WebSocket route, with the token in a header or (as browsers must) a subprotocol. */
export function socketTail(baseUrl: string, token: string, query = "", how: "header" | "protocol" = "protocol") {
  const url = `${baseUrl.replace(/^http/, "ws")}/v1/tail${query ? `?${query}` : ""}`;
  const ws =
    how === "protocol"
      ? new WebSocket(url, ["auditlog.v1", `bearer.${token}`])
      : new WebSocket(url, ["auditlog.v1"], { headers: { authorization: `Bearer ${token}` } });
  const collector = new TailCollector();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      collector.end();
      resolve({ code, reason: reason.toString() });
    }),
  );
  const rejected = new Promise<{ status: number; body: string }>((resolve) =>
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, body });
        collector.end(new Error(`HTTP ${res.statusCode}`));
      });
    }),
  );
  ws.on("error", () => {});
  ws.on("message", (data) => collector.push(JSON.parse(String(data))));
  return { ws, collector, closed, rejected };
}
