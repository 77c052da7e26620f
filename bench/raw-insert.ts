/**
 * The baseline the service is measured against: the same realistic rows,
 * already validated and shaped, inserted straight into a fresh chDB store
 * with the service's schema, 10,000 rows per INSERT, from one process.
 * Prints one JSON line: { rows, seconds }.
 *
 *   node --import tsx bench/raw-insert.ts DATA_DIR ROWS
 */
import { create } from "@bufbuild/protobuf";
import { EventSchema } from "../gen/auditlog/v1/event_pb.js";
import { loadConfig } from "../src/config.ts";
import { validateEvent } from "../src/ingest/validate.ts";
import { toInsertRow } from "../src/store/event-row.ts";
import { createStoreClient } from "../src/store/client.ts";
import { insertEventRows } from "../src/store/event-writes.ts";
import { migrate } from "../src/store/schema.ts";
import { realisticEvent } from "./realistic-events.ts";

const [dataDir, rowsArg] = process.argv.slice(2);
const total = Number(rowsArg);
const config = loadConfig({ AUDITLOG_DATA_DIR: dataDir });
const client = await createStoreClient(config.store);
await migrate(client, config.store);

const now = Date.now() * 1000;
const pool = Array.from({ length: 20_000 }, (_, i) => {
  const result = validateEvent(create(EventSchema, realisticEvent(i)), `tenant-${i % 50}`, now, config.ingest.limits);
  if (!result.ok) throw new Error(result.invalid.reason);
  return toInsertRow(result.record, now, 90);
});

const started = performance.now();
for (let done = 0; done < total; done += 10_000) {
  const start = done % pool.length;
  await insertEventRows(client, pool.slice(start, start + 10_000));
}
process.stdout.write(JSON.stringify({ rows: total, seconds: (performance.now() - started) / 1000 }) + "\n");
await client.close();
