/**
 * Small helpers shared by the security suite: raw Connect calls that keep the
 * exact body (to check what an answer leaks), the Connect error contract, and
 * the check that an error message carries no SQL or engine internals.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import WebSocket from "ws";
import { expect } from "vitest";

export const RPC = {
  append: "auditlog.v1.IngestService/Append",
  search: "auditlog.v1.QueryService/SearchEvents",
  get: "auditlog.v1.QueryService/GetEvent",
  export: "auditlog.v1.QueryService/ExportEvents",
  stats: "auditlog.v1.QueryService/GetStats",
  types: "auditlog.v1.QueryService/ListEventTypes",
  timeline: "auditlog.v1.QueryService/GetTimeline",
  verify: "auditlog.v1.IntegrityService/VerifyChain",
  checkpoint: "auditlog.v1.IntegrityService/GetCheckpoint",
} as const;

/** Every code the Connect protocol defines, as it appears in a JSON error body. */
export const CONNECT_CODES = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
] as const;

/** The HTTP status the Connect protocol gives each code. */
export const CONNECT_STATUS: Record<string, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

export interface RawAnswer {
  status: number;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: any;
}

/** A Connect unary call in JSON, as curl makes it, keeping the raw body. */
export async function callJson(
  baseUrl: string,
  path: string,
  body: unknown,
  token?: string,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const res = await fetch(`${baseUrl}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return answer(res);
}

/** A plain GET (the export download), keeping the raw body. */
export async function get(baseUrl: string, pathAndQuery: string, token?: string): Promise<RawAnswer> {
  const res = await fetch(`${baseUrl}/${pathAndQuery.replace(/^\//, "")}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return answer(res);
}

async function answer(res: Response): Promise<RawAnswer> {
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** Asserts a Connect error answer: the status of its code and a body of exactly {code, message}. */
export function expectConnectError(res: RawAnswer, code: (typeof CONNECT_CODES)[number], label = ""): void {
  expect(res.json, `${label}: body ${res.text.slice(0, 300)}`).toBeTypeOf("object");
  expect({ status: res.status, code: res.json.code }, label).toEqual({ status: CONNECT_STATUS[code], code });
  expect(Object.keys(res.json).sort(), `${label}: an error body carries nothing but code and message`).toEqual(["code", "message"]);
  expect(res.json.message, label).toBeTypeOf("string");
}

/** The Connect code of a failed call made with a generated client. */
export async function failureOf(call: Promise<unknown> | (() => Promise<unknown>)): Promise<ConnectError> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded; expected it to fail");
}

export { Code };

/**
 * Fragments of the service's SQL and of ClickHouse's errors. None of them may
 * reach a caller: a message holding one would show the query or the engine.
 */
const SQL_MARKERS = [
  "SELECT ",
  "FROM events",
  " WHERE ",
  "DB::Exception",
  "Code: ",
  "ClickHouse",
  "chdb",
  "{p0:",
  "{p1:",
  "String}",
  "query_params",
  "Syntax error",
  "fromUnixTimestamp64Micro",
  "positionCaseInsensitiveUTF8",
  "hasAllTokens",
  "mapContains",
  "tenant_id = ",
  "    at ",
  "node_modules",
  ".ts:",
];

/**
 * Asserts that `message` shows no SQL or engine internals. What the caller
 * sent may be quoted back (it is theirs), so each of `inputs` is cut out of
 * the message first, raw and JSON-quoted.
 */
export function expectNoSqlLeak(message: string, inputs: string[] = [], label = ""): void {
  let rest = message;
  for (const input of [...inputs].sort((a, b) => b.length - a.length)) {
    if (!input) continue;
    for (const form of [input, JSON.stringify(input).slice(1, -1), input.toUpperCase()]) rest = rest.split(form).join("");
  }
  for (const marker of SQL_MARKERS) {
    expect(rest.includes(marker), `${label}: the message shows ${JSON.stringify(marker)}: ${message.slice(0, 500)}`).toBe(false);
  }
}

/**
 * Opens the /v1/tail WebSocket and reports how the server answered the
 * upgrade: refused (status and body), or opened (then closed again here).
 */
export function tailUpgrade(baseUrl: string, token: string, query = ""): Promise<{ opened: true } | { opened: false; status: number; body: string }> {
  const url = `${baseUrl.replace(/^http/, "ws")}/v1/tail${query ? `?${query}` : ""}`;
  const ws = new WebSocket(url, ["auditlog.v1", `bearer.${token}`]);
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      ws.close();
      resolve({ opened: true });
    });
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ opened: false, status: res.statusCode ?? 0, body }));
    });
    ws.on("error", (err) => reject(err));
  });
}

/** Resolves once GET /healthz answers 200. */
export async function healthz(baseUrl: string): Promise<number> {
  return (await fetch(`${baseUrl}/healthz`)).status;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A string for a test label: quoted, escaped, cut short. */
export const show = (s: string, max = 60) => {
  const quoted = JSON.stringify(s);
  return quoted.length > max ? `${quoted.slice(0, max)}…(${s.length} chars)` : quoted;
};
