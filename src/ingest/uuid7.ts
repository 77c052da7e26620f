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
  const b = offset;
  offset += 16;
  pool.writeUIntBE(nowMs, b, 6);
  pool[b + 6] = 0x7a;
  pool[b + 7] = 0x10;
  pool[b + 8] = 0x80 | (pool[b + 8] & 0x3f);
  for (let i = 0; i < 16; i++) {
    const v = pool[b + i];
    text[DIGITS_AT[i]] = HEX[v >> 4];
    text[DIGITS_AT[i] + 1] = HEX[v & 15];
  }
  // One string, made from the text's bytes: hex and slices of it made ten.
  return text.toString("latin1");
}

const HEX = Buffer.from("0123456789abcdef", "latin1");
/** The id's text: its dashes stay, its hex digits are written over for each id. */
const text = Buffer.from("00000000-0000-0000-0000-000000000000", "latin1");
/** Where each of the 16 bytes' two hex digits go in the text. */
const DIGITS_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * Every id `serverEventId` makes, and the 1 in 4,096 client-made UUIDv7s
 * that happen to carry the same mark. One pattern for JavaScript and for
 * ClickHouse's `match` (RE2): both read it alike.
 */
export const SERVER_MADE_ID_REGEX = "^[0-9a-f]{8}-[0-9a-f]{4}-7a10-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";
const serverMade = new RegExp(SERVER_MADE_ID_REGEX);

/** Whether the id may be one the server made (see `SERVER_MADE_ID_REGEX`). */
export const mayBeServerMade = (id: string): boolean => serverMade.test(id);
