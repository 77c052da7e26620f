import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { postJson } from "../helpers/clients.ts";
import { removeDataDir, ROOT, startServer, tempDataDir } from "../helpers/server.ts";

const run = promisify(execFile);
const dataDir = tempDataDir();
afterAll(() => removeDataDir(dataDir));

const cli = (args: string[]) =>
  run(process.execPath, [join(ROOT, "bin/auditlog.mjs"), ...args], {
    env: { ...process.env, AUDITLOG_DATA_DIR: dataDir, AUDITLOG_JWT_SECRET: "" },
  });

describe("auditlog token", () => {
  it("mints a token, with a secret generated into the data dir (0600), that the server accepts", async () => {
    const { stdout } = await cli(["token", "--tenant", "acme", "--role", "writer,auditor", "--sub", "svc-billing", "--ttl", "10m"]);
    const token = stdout.trim();
    expect(token.split(".")).toHaveLength(3);
    const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect(payload).toMatchObject({ sub: "svc-billing", tenant: "acme", roles: ["writer", "auditor"] });
    expect(payload.exp - payload.iat).toBe(600);
    expect(statSync(join(dataDir, "jwt-secret")).mode & 0o777).toBe(0o600);

    const server = await startServer({ dataDir, env: { AUDITLOG_JWT_SECRET: "" } });
    const hint = await server.waitForLog((l) => String(l.msg).startsWith("get a token"));
    expect(hint.msg).toContain("npx auditlog token --tenant acme --role writer,auditor");
    const res = await postJson(server.baseUrl, "auditlog.v1.IngestService/Append", { events: [{ type: "cli.test", action: "CREATE", actor: { id: "me" } }] }, token);
    expect(res.json.acceptedCount).toBe("1");
    expect(await server.stop()).toBe(0);
  });

  it("explains what is missing", async () => {
    await expect(cli(["token", "--role", "writer"])).rejects.toMatchObject({ stderr: expect.stringContaining("--tenant is required") });
    await expect(cli(["token", "--tenant", "acme", "--role", "root"])).rejects.toMatchObject({ stderr: expect.stringContaining("unknown: root") });
    await expect(cli(["token", "--tenant", "acme", "--role", "writer", "--ttl", "soon"])).rejects.toMatchObject({ stderr: expect.stringContaining("invalid duration") });
    await expect(cli(["frobnicate"])).rejects.toMatchObject({ stderr: expect.stringContaining('unknown command "frobnicate"') });
  });
});
