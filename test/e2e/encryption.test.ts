import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bearer, connectClients } from "../helpers/clients.ts";
import { sampleEvent } from "../helpers/events.ts";
import { removeDataDir, startServer, tempDataDir, type TestServer } from "../helpers/server.ts";

const KEY = randomBytes(32).toString("hex");
// Distinctive enough that it cannot occur by chance; the text index keeps words lower-cased.
const SECRET = "Zebracorn4711Payload";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDataDir));
function newDir() {
  const dir = tempDataDir();
  dirs.push(dir);
  return dir;
}

/** Every file under `dir` whose bytes contain `needle`, in any letter case the store could keep. */
function filesContaining(dir: string, needle: string): string[] {
  const forms = [needle, needle.toLowerCase(), needle.toUpperCase()].map((s) => Buffer.from(s));
  const hits: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = readFileSync(path);
    if (forms.some((form) => bytes.includes(form))) hits.push(path);
  }
  return hits;
}

async function storeSensitiveEvent(server: TestServer) {
  const { ingest, query } = connectClients(server.baseUrl, "connect-binary");
  const event = sampleEvent(1, {
    message: `card holder ${SECRET} changed the limit`,
    attributes: { note: `see ${SECRET}` },
    before: { limit: 100, holder: SECRET },
    after: { limit: 500, holder: SECRET },
  });
  await ingest.append({ events: [event] }, bearer(await server.token("acme", ["writer"])));
  const found = await query.searchEvents({ filter: { query: `${SECRET} -type:auditlog.*` } }, bearer(await server.token("acme", ["auditor"])));
  return found.events;
}

describe("encryption at rest (AUDITLOG_ENCRYPTION_KEY)", () => {
  const encryptedDir = newDir();

  it("finds a sensitive value in the files of a plain store (the check below can see it)", async () => {
    const dir = newDir();
    const server = await startServer({ dataDir: dir });
    expect(await storeSensitiveEvent(server)).toHaveLength(1);
    await server.stop();
    expect(filesContaining(dir, SECRET).length).toBeGreaterThan(0);
  });

  it("keeps every file of an encrypted store free of it, while the API reads it in plaintext", async () => {
    const server = await startServer({ dataDir: encryptedDir, env: { AUDITLOG_ENCRYPTION_KEY: KEY } });
    const events = await storeSensitiveEvent(server);
    expect(events).toHaveLength(1);
    expect(events[0].message).toContain(SECRET);
    expect(events[0].attributes.note).toBe(`see ${SECRET}`);
    expect(events[0].after).toEqual({ limit: 500, holder: SECRET });
    await server.stop();
    expect(filesContaining(encryptedDir, SECRET)).toEqual([]);
    expect(filesContaining(encryptedDir, KEY)).toEqual([]);
  });

  it("refuses to open the encrypted store without its key, or with another one, and says why", async () => {
    await expect(startServer({ dataDir: encryptedDir })).rejects.toThrow(/is encrypted; set AUDITLOG_ENCRYPTION_KEY/);
    await expect(
      startServer({ dataDir: encryptedDir, env: { AUDITLOG_ENCRYPTION_KEY: randomBytes(32).toString("hex") } }),
    ).rejects.toThrow(/not the key the store .* was encrypted with/);
  });

  it("reopens it with the right key, with the event intact", async () => {
    const server = await startServer({ dataDir: encryptedDir, env: { AUDITLOG_ENCRYPTION_KEY: KEY } });
    const { query } = connectClients(server.baseUrl, "connect-json");
    const res = await query.searchEvents({ filter: { query: `${SECRET} -type:auditlog.*` } }, bearer(await server.token("acme", ["auditor"])));
    expect(res.events.map((e) => e.before)).toEqual([{ limit: 100, holder: SECRET }]);
    await server.stop();
  });

  it("refuses to encrypt a store created plain, instead of leaving it half encrypted", async () => {
    const dir = newDir();
    await (await startServer({ dataDir: dir })).stop();
    await expect(startServer({ dataDir: dir, env: { AUDITLOG_ENCRYPTION_KEY: KEY } })).rejects.toThrow(/created without encryption/);
  });

  it("refuses a key that is not 64 hex digits", async () => {
    await expect(startServer({ dataDir: newDir(), env: { AUDITLOG_ENCRYPTION_KEY: "not-a-key" } })).rejects.toThrow(/64 hex digits/);
  });
});
