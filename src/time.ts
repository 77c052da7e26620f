import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";

/**
 * Time inside the service is an integer count of microseconds since the
 * epoch (ClickHouse's DateTime64(6)); a JS number holds it exactly until 2255.
 */
export function microsFromTimestamp(ts: Timestamp): number {
  return Number(ts.seconds) * 1_000_000 + Math.floor(ts.nanos / 1000);
}

export function timestampFromMicros(us: number): Timestamp {
  const seconds = Math.floor(us / 1_000_000);
  return create(TimestampSchema, { seconds: BigInt(seconds), nanos: (us - seconds * 1_000_000) * 1000 });
}

export const nowMicros = (): number => Date.now() * 1000;
