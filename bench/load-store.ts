/**
 * Fills a fresh store with realistic events straight through chDB (no
 * server), spread evenly over the last DAYS (default 30) days, for the
 * query benchmark. Prints one JSON line: rows, seconds, bytes compressed and
 * uncompressed.
 *
 *   node --import tsx bench/load-store.ts DATA_DIR ROWS [DAYS]
 */
import { create } from "@bufbuild/protobuf";
import { EventSchema } from "../gen/auditlog/v1/event_pb.js";
import { loadConfig } from "../src/config.ts";
import { validateEvent } from "../src/ingest/validate.ts";
import { dateTime64, INSERT_COLUMNS, toInsertRow } from "../src/store/event-row.ts";
import { openStoreClient } from "../src/store/client.ts";
import { insertEventRows } from "../src/store/event-writes.ts";
import { migrate } from "../src/store/schema.ts";
import { realisticEvent } from "./realistic-events.ts";

const [dataDir, rowsArg, daysArg = "30"] = process.argv.slice(2);
const total = Number(rowsArg);
const config = loadConfig({ AUDITLOG_DATA_DIR: dataDir, AUDITLOG_FSYNC: "false" });
const { client, insertRows } = await openStoreClient(config.store);
await migrate(client, config.store);

const nowUs = Date.now() * 1000;
const spanUs = Number(daysArg) * 86_400_000_000;
const POOL = 50_000;
const pool = Array.from({ length: POOL }, (_, i) => {
  const result = validateEvent(create(EventSchema, realisticEvent(i)), `tenant-${i % 50}`, nowUs, config.ingest.limits);
  if (!result.ok) throw new Error(result.invalid.reason);
  return toInsertRow(result.record, nowUs, 90);
});

const started = performance.now();
const BATCH = 50_000;
const RECEIVED_AT = INSERT_COLUMNS.indexOf("received_at");
for (let done = 0; done < total; done += BATCH) {
  const rows = [];
  for (let n = done; n < Math.min(done + BATCH, total); n++) {
    const row = [...pool[n % POOL]];
    row[1] = `${row[1]}-${n}`;
    const timeUs = nowUs - Math.floor(((total - n) / total) * spanUs);
    row[2] = dateTime64(timeUs);
    // Received a second after it happened, in batches of a second, as the
    // service would stamp a steady stream: by default 30 days of receipts
    // in 5 or 6 weekly partitions, like a store that has run for a month.
    row[RECEIVED_AT] = dateTime64(Math.min(nowUs, Math.floor(timeUs / 1_000_000) * 1_000_000 + 1_000_000));
    rows.push(row);
  }
  await insertEventRows(insertRows, Buffer.from(rows.map((row) => `${JSON.stringify(row)}\n`).join("")));
}
const seconds = (performance.now() - started) / 1000;
await client.command({ query: "OPTIMIZE TABLE events FINAL" }).catch(() => {});
const parts = await client.query({
  query: "SELECT sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed FROM system.parts WHERE active AND table = 'events'",
  format: "JSONEachRow",
});
const [{ compressed, uncompressed }] = await parts.json<{ compressed: string; uncompressed: string }>();
process.stdout.write(JSON.stringify({ rows: total, seconds, compressed: Number(compressed), uncompressed: Number(uncompressed) }) + "\n");
await client.close();
