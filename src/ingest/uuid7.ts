import { randomFillSync } from "node:crypto";

// Random bytes are drawn in blocks: one syscall per 512 ids instead of one each.
const pool = Buffer.alloc(16 * 512);
let offset = pool.length;

/**
 * RFC 9562 UUIDv7: 48-bit millisecond timestamp, then random bits, so ids
 * sort by creation time and index well.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const b = pool.subarray(offset, offset + 16);
  offset += 16;
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = 0x70 | (b[6] & 0x0f);
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
