import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { createStoreClients, type StoreClients } from "../../src/store/client.ts";
import { migrate } from "../../src/store/schema.ts";
import { createTenantRegistry } from "../../src/tenants/registry.ts";
import { removeDataDir, tempDataDir } from "../helpers/server.ts";

/**
 * Two instances on one store, as two registries over one engine: the second
 * learns of the first's tenants only at its next refresh (every 5 s).
 */
describe("tenants auto-created on first use, with several instances", () => {
  const dataDir = tempDataDir();
  let store: StoreClients;
  beforeAll(async () => {
    const config = loadConfig({ AUDITLOG_DATA_DIR: dataDir });
    store = await createStoreClients(config.store);
    await migrate(store.writer, config.store);
  });
  afterAll(async () => {
    await store.close();
    removeDataDir(dataDir);
  });

  it("never replaces a tenant another instance made since its last refresh with the defaults", async () => {
    const registry = () => createTenantRegistry({ writer: store.writer, reader: store.reader, autoCreate: true, log: pino({ level: "silent" }), refreshMs: 3_600_000 });
    const first = registry();
    const second = registry();
    await first.load();
    await second.load();
    try {
      await first.create("kept-100-years", { retentionDays: 36_500, redaction: { keys: ["card"] } });
      expect(second.get("kept-100-years")).toBeUndefined();
      // An event for the tenant reaches the second instance.
      const resolved = await second.resolve("kept-100-years");
      expect(resolved).toMatchObject({ retentionDays: 36_500, redaction: { keys: ["card"] } });
      // And the store holds nothing newer than the first instance's version.
      const third = registry();
      await third.load();
      expect(third.get("kept-100-years")).toMatchObject({ retentionDays: 36_500 });
      third.close();
      // A tenant nobody made is still made on first use.
      expect(await second.resolve("brand-new")).toMatchObject({ id: "brand-new", retentionDays: 0 });
    } finally {
      first.close();
      second.close();
    }
  });
});
