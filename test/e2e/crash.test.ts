import { afterAll, describe, expect, it } from "vitest";
import { crashRound } from "../helpers/crash-run.ts";
import { removeDataDir, tempDataDir } from "../helpers/server.ts";

const dataDir = tempDataDir();
afterAll(() => removeDataDir(dataDir));

describe("SIGKILL while several streams ingest at full speed", () => {
  it("loses no acknowledged event, stores none twice even when the client retries, and reopens a store whose chains verify and whose stats equal its events", async () => {
    const seed = Date.now() % 1_000_000;
    const round = await crashRound({ dataDir, round: 1, seed, streams: 3, perMessage: 200 });
    const context = `seed ${seed}, killed after ${round.killAfterAcks} acknowledged events`;
    expect(round.acknowledged, context).toBeGreaterThan(0);
    expect(round.acknowledgedFound, context).toBe(round.acknowledged);
    expect(round.duplicates, context).toBe(0);
    // Sending the unacknowledged events again stores each exactly once too.
    expect(round.stored, context).toBe(round.sent);
    expect(round.chainsOk, context).toBe(true);
    expect(round.statsMatch, context).toBe(true);
  });
});
