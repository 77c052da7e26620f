import { randomFillSync } from "node:crypto";

// Random bytes are drawn in blocks: one syscall per 512 ids instead of one each.
const pool = Buffer.alloc(16 * 512);
let offset = pool.length;

/**
 * The ids the server makes for events sent without one: RFC 9562 UUIDv7s
 * (48-bit millisecond timestamp, then random bits, so ids sort by creation
 * time and index well) whose 12 `rand_a` bits are always 0xa10, so every one
 * reads `xxxxxxxx-xxxx-7a10-…`. The mark lets the idempotency index skip
 * them (`SERVER_MADE_ID_REGEX`); 62 random bits per millisecond remain.
 */
export function serverEventId(nowMs: number = Date.now()): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const b = pool.subarray(offset, offset + 16);
  offset += 16;
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = 0x7a;
  b[7] = 0x10;
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Every id `serverEventId` makes, and the 1 in 4,096 client-made UUIDv7s
 * that happen to carry the same mark. One pattern for JavaScript and for
 * ClickHouse's `match` (RE2): both read it alike.
 */
export const SERVER_MADE_ID_REGEX = "^[0-9a-f]{8}-[0-9a-f]{4}-7a10-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";
const serverMade = new RegExp(SERVER_MADE_ID_REGEX);

/** Whether the id may be one the server made (see `SERVER_MADE_ID_REGEX`). */
export const mayBeServerMade = (id: string): boolean => serverMade.test(id);
