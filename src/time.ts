import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";

/**
 * Time inside the service is an integer count of microseconds since the
 * epoch (ClickHouse's DateTime64(6)); a JS number holds it exactly until 2255.
 */
/**
 * The times the service takes: from 1900-01-01, where ClickHouse's
 * DateTime64(6) starts, to 2255-01-01, short of 2^53 µs (2255-06-05), the
 * largest count of microseconds a JS number holds exactly and chDB binds as a
 * query parameter (it refuses larger ones, which made a later time INTERNAL).
 */
export const MIN_MICROS = Date.UTC(1900, 0, 1) * 1000;
export const MAX_MICROS = Date.UTC(2255, 0, 1) * 1000;
/** How errors name that range. */
export const TIME_RANGE = "between 1900-01-01 and 2255-01-01";

/**
 * The timestamp in microseconds, or undefined when it is malformed (nanos out
 * of range) or outside what the store can hold. Callers say which field.
 */
export function storableMicros(ts: Timestamp): number | undefined {
  if (!Number.isInteger(ts.nanos) || ts.nanos < 0 || ts.nanos > 999_999_999) return undefined;
  if (ts.seconds < BigInt(MIN_MICROS / 1_000_000) || ts.seconds > BigInt(MAX_MICROS / 1_000_000)) return undefined;
  return microsFromTimestamp(ts);
}

export function microsFromTimestamp(ts: Timestamp): number {
  return Number(ts.seconds) * 1_000_000 + Math.floor(ts.nanos / 1000);
}

export function timestampFromMicros(us: number): Timestamp {
  const seconds = Math.floor(us / 1_000_000);
  return create(TimestampSchema, { seconds: BigInt(seconds), nanos: (us - seconds * 1_000_000) * 1000 });
}

export const nowMicros = (): number => Date.now() * 1000;
