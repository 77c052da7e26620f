/**
 * The baseline the service is measured against: the same realistic rows,
 * already validated, shaped and serialized, inserted straight into a fresh
 * chDB store with the service's schema, 10,000 rows per INSERT, from one
 * process, through the fastest path chDB offers (one buffer handed to the
 * engine's own parser; it takes no binary formats), with the service's
 * INSERT settings (text indexes left to the merges).
 * Prints one JSON line: { rows, seconds }.
 *
 *   node --import tsx bench/raw-insert.ts DATA_DIR ROWS
 */
import { create } from "@bufbuild/protobuf";
import { EventSchema } from "../gen/auditlog/v1/event_pb.js";
import { loadConfig } from "../src/config.ts";
import { validateEvent } from "../src/ingest/validate.ts";
import { INSERT_COLUMNS, toInsertRow } from "../src/store/event-row.ts";
import { openStoreClient } from "../src/store/client.ts";
import { EVENT_INSERT_SETTINGS } from "../src/store/event-writes.ts";
import { migrate } from "../src/store/schema.ts";
import { realisticEvent } from "./realistic-events.ts";

const [dataDir, rowsArg] = process.argv.slice(2);
const total = Number(rowsArg);
const config = loadConfig({ AUDITLOG_DATA_DIR: dataDir });
const { client, insertRows } = await openStoreClient(config.store);
await migrate(client, config.store);

const now = Date.now() * 1000;
const pool = Array.from({ length: 20_000 }, (_, i) => {
  const result = validateEvent(create(EventSchema, realisticEvent(i)), `tenant-${i % 50}`, now, config.ingest.limits);
  if (!result.ok) throw new Error(result.invalid.reason);
  return toInsertRow(result.record, now, 90);
});

const blocks = [0, 10_000].map((start) => Buffer.from(pool.slice(start, start + 10_000).map((row) => `${JSON.stringify(row)}\n`).join("")));

const started = performance.now();
for (let done = 0; done < total; done += 10_000) {
  await insertRows("events", INSERT_COLUMNS, blocks[(done / 10_000) % 2], EVENT_INSERT_SETTINGS);
}
process.stdout.write(JSON.stringify({ rows: total, seconds: (performance.now() - started) / 1000 }) + "\n");
await client.close();
