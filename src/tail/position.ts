import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { invalidArgument } from "../errors.ts";
import { decodeOpaque } from "../query/page-token.ts";
import { storableMicros, TIME_RANGE } from "../time.ts";

/**
 * A place in commit order: after the event committed at `receivedAtUs` with
 * this tenant and id. Commit order is (received_at, tenant_id, id), which a
 * batch's events share the first of; "" sorts before every real tenant, so
 * `{ receivedAtUs: t, tenantId: "", id: "" }` is "before everything committed at t".
 */
export interface TailPosition {
  receivedAtUs: number;
  tenantId: string;
  id: string;
}

/**
 * Compares strings by UTF-8 bytes, as ClickHouse orders String columns. UTF-16
 * code units order surrogates (U+D800–DFFF) below U+E000–FFFF, code points
 * the other way round; shifting both ranges fixes that.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}
const rank = (unit: number) => (unit >= 0xd800 && unit <= 0xdfff ? unit + 0x2000 : unit >= 0xe000 ? unit - 0x800 : unit);

export function comparePositions(a: TailPosition, b: TailPosition): number {
  return a.receivedAtUs - b.receivedAtUs || compareUtf8(a.tenantId, b.tenantId) || compareUtf8(a.id, b.id);
}

const BAD_CURSOR = "cursor is not valid: pass the `cursor` of a tail response unchanged";

export function encodeCursor(p: TailPosition): string {
  return Buffer.from(JSON.stringify([1, p.receivedAtUs, p.tenantId, p.id])).toString("base64url");
}

export function decodeCursor(cursor: string): TailPosition {
  const body = decodeOpaque(cursor, BAD_CURSOR);
  if (!Array.isArray(body) || body.length !== 4 || body[0] !== 1) throw invalidArgument(BAD_CURSOR);
  const [, receivedAtUs, tenantId, id] = body as unknown[];
  if (!Number.isSafeInteger(receivedAtUs) || typeof tenantId !== "string" || typeof id !== "string") {
    throw invalidArgument(BAD_CURSOR);
  }
  return { receivedAtUs: receivedAtUs as number, tenantId, id };
}

/** Where a tail starts: after a cursor, from a commit time, or (undefined) now. */
export function startPosition(cursor: string, since: Timestamp | undefined): TailPosition | undefined {
  if (cursor) return decodeCursor(cursor);
  if (!since) return undefined;
  const us = storableMicros(since);
  if (us === undefined) throw invalidArgument(`since must be a valid time ${TIME_RANGE}`);
  return { receivedAtUs: us, tenantId: "", id: "" };
}
