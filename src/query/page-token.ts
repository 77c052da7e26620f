import { createHash } from "node:crypto";
import { invalidArgument } from "../errors.ts";

/**
 * Where the next page starts: after the last returned event in the order
 * (time DESC, id DESC, tenant DESC), within the snapshot the first page took
 * (events committed at or before `snapshotUs`), for the same filter.
 */
export interface PageCursor {
  snapshotUs: number;
  timeUs: number;
  id: string;
  tenantId: string;
  filterHash: string;
}

const BAD_TOKEN =
  "page_token is not valid: pass the next_page_token of the previous response unchanged, with the same filter";

export function encodePageToken(cursor: PageCursor): string {
  const body = [1, cursor.snapshotUs, cursor.timeUs, cursor.id, cursor.tenantId, cursor.filterHash];
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

/** The JSON inside an opaque base64url token (page token, tail cursor), or `invalid` as an INVALID_ARGUMENT. */
export function decodeOpaque(token: string, invalid: string): unknown {
  try {
    return JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalidArgument(invalid);
  }
}

/**
 * The cursor in a page token, refused unless well-formed and, when
 * `filterHash` is given, made for that filter (else see `checkSameFilter`).
 */
export function decodePageToken(token: string, filterHash?: string): PageCursor {
  const body = decodeOpaque(token, BAD_TOKEN);
  if (!Array.isArray(body) || body.length !== 6 || body[0] !== 1) throw invalidArgument(BAD_TOKEN);
  const [, snapshotUs, timeUs, id, tenantId, hash] = body as unknown[];
  if (
    !Number.isSafeInteger(snapshotUs) ||
    !Number.isSafeInteger(timeUs) ||
    typeof id !== "string" ||
    typeof tenantId !== "string" ||
    typeof hash !== "string"
  ) {
    throw invalidArgument(BAD_TOKEN);
  }
  const cursor = { snapshotUs: snapshotUs as number, timeUs: timeUs as number, id, tenantId, filterHash: hash };
  if (filterHash !== undefined) checkSameFilter(cursor, filterHash);
  return cursor;
}

export function checkSameFilter(cursor: PageCursor, filterHash: string): void {
  if (cursor.filterHash !== filterHash) {
    throw invalidArgument("page_token belongs to a different filter; start again without a page_token");
  }
}

/** A short digest of a value's canonical JSON (object keys sorted), to bind tokens to their filter. */
export function canonicalHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("base64url").slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
