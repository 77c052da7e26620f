/**
 * `npm run bench:crash`: the crash test of `npm test`, repeated (default 5
 * rounds, BENCH_CRASH_ROUNDS) on one data directory that every round adds
 * to: SIGKILL at a random moment while Ingest streams and Append loops write
 * at full speed, restart, and check every acknowledged event is there
 * exactly once and every chain verifies. Exits 1 on any loss.
 */
import { crashRound, type CrashRound } from "../test/helpers/crash-run.ts";
import { removeDataDir, tempDataDir } from "../test/helpers/server.ts";
import { environmentLine, writeResults } from "./common.ts";

const rounds = Number(process.env.BENCH_CRASH_ROUNDS ?? 5);
const dataDir = tempDataDir();
const results: CrashRound[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const r = await crashRound({ dataDir, round, seed: 1000 + round * 7919, streams: 4, perMessage: 250 });
    results.push(r);
    console.log(`round ${round}: ${JSON.stringify(r)}`);
  }
} finally {
  removeDataDir(dataDir);
}
const ok = (r: CrashRound) => r.acknowledgedFound === r.acknowledged && r.duplicates === 0 && r.stored === r.sent && r.chainsOk && r.statsMatch;
const rows = results.map(
  (r, i) =>
    `| ${i + 1} | ${r.seed} | ${r.killAfterAcks} | ${r.acknowledged} | ${r.acknowledgedFound} | ${r.retried} | ${r.sent} | ${r.stored} | ${r.duplicates} | ${Math.round(r.restartMs)} | ${r.chainsOk ? "yes" : "NO"} | ${r.statsMatch ? "yes" : "NO"} | ${ok(r) ? "✓" : "✗"} |`,
);
writeResults(`## Crash safety — ${new Date().toISOString().slice(0, 16)}Z

${environmentLine()}; ${rounds} rounds on one data directory, each: 4 Ingest streams (4 messages of 250 events) and 4 Append loops (250 events) at full speed, SIGKILL at a random point (after a random number of acknowledged events, plus 0–200 ms), restart, send the unacknowledged events again (same ids, as a client retries), read back by export.

| round | seed | kill after acks | acknowledged | found after restart | retried | sent | stored | stored twice | restart ms | chains verify | stats = events | |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|
${rows.join("\n")}
`);
process.exit(results.every(ok) ? 0 : 1);
