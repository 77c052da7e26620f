import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJson } from "../helpers/clients.ts";
import { removeDataDir, startServer, TEST_SECRET, type TestServer } from "../helpers/server.ts";

const APPEND = "auditlog.v1.IngestService/Append";
const SEARCH = "auditlog.v1.QueryService/SearchEvents";
const GET = "auditlog.v1.QueryService/GetEvent";
const event = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: "auth.test", action: "VIEW", actor: { id: "a" }, ...extra });

const hs256 = (claims: Record<string, unknown>, secret = TEST_SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
const now = () => Math.floor(Date.now() / 1000);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe("with the HS256 shared secret", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(server.dataDir);
  });

  const call = (path: string, body: unknown, token?: string) => postJson(server.baseUrl, path, body, token);

  describe("refuses tokens that do not prove who is calling with UNAUTHENTICATED", () => {
    it("refuses a call without a token", async () => {
      for (const path of [APPEND, SEARCH, GET]) {
        const res = await call(path, {});
        expect(res.status).toBe(401);
        expect(res.json.code).toBe("unauthenticated");
        expect(res.json.message).toContain("Authorization: Bearer");
      }
    });

    it("refuses a header that is not a bearer token", async () => {
      const res = await fetch(`${server.baseUrl}/${SEARCH}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Basic dXNlcjpwYXNz" },
        body: "{}",
      });
      expect(res.status).toBe(401);
    });

    it("refuses an expired token and says so", async () => {
      const token = await hs256({ sub: "s", tenant: "acme", roles: ["auditor"], exp: now() - 120 });
      const res = await call(SEARCH, {}, token);
      expect(res.status).toBe(401);
      expect(res.json.message).toBe("the token has expired; mint a new one");
    });

    it("refuses a token that is not valid yet", async () => {
      const token = await hs256({ sub: "s", tenant: "acme", roles: ["auditor"], exp: now() + 600, nbf: now() + 300 });
      expect((await call(SEARCH, {}, token)).status).toBe(401);
    });

    it("refuses a token signed with another secret", async () => {
      const token = await hs256({ sub: "s", tenant: "acme", roles: ["auditor"], exp: now() + 600 }, "some-other-secret-of-sufficient-length!!");
      const res = await call(SEARCH, {}, token);
      expect(res.status).toBe(401);
      expect(res.json.message).toContain("signature does not verify");
    });

    it('refuses alg "none"', async () => {
      const token = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "s", tenant: "acme", roles: ["admin"], exp: now() + 600 })}.`;
      const res = await call(SEARCH, {}, token);
      expect(res.status).toBe(401);
      expect(res.json.message).toContain('alg "none"');
    });

    it("refuses a token whose payload was changed after signing", async () => {
      const token = await server.token("acme", ["auditor"]);
      const [header, , signature] = token.split(".");
      const forged = `${header}.${b64({ sub: "s", tenant: "globex", roles: ["admin"], exp: now() + 600 })}.${signature}`;
      expect((await call(SEARCH, {}, forged)).status).toBe(401);
    });

    it("refuses a token without a known role, or without a tenant unless admin", async () => {
      expect((await call(SEARCH, {}, await hs256({ sub: "s", tenant: "acme", roles: ["root"], exp: now() + 600 }))).status).toBe(401);
      expect((await call(SEARCH, {}, await hs256({ sub: "s", roles: ["auditor"], exp: now() + 600 }))).status).toBe(401);
      expect((await call(SEARCH, {}, await hs256({ tenant: "acme", roles: ["auditor"], exp: now() + 600 }))).status).toBe(401);
      expect((await call(SEARCH, {}, await hs256({ sub: "s", tenant: "acme", roles: ["auditor"] }))).status).toBe(401);
    });

    it("refuses garbage", async () => {
      expect((await call(SEARCH, {}, "not.a.jwt")).status).toBe(401);
      expect((await call(SEARCH, {}, "x")).status).toBe(401);
    });
  });

  describe("roles decide what a valid token may do, with PERMISSION_DENIED", () => {
    it("does not let a writer read", async () => {
      const res = await call(SEARCH, {}, await server.token("acme", ["writer"]));
      expect(res.status).toBe(403);
      expect(res.json.message).toBe("SearchEvents requires the role user or auditor or admin; the token has: writer");
    });

    it("does not let an auditor write", async () => {
      const res = await call(APPEND, { events: [event("nope")] }, await server.token("acme", ["auditor"]));
      expect(res.status).toBe(403);
    });

    it("gives a token with several roles the union of their permissions", async () => {
      const both = await server.token("acme", ["writer", "auditor"]);
      expect((await call(APPEND, { events: [event("both-1")] }, both)).json.acceptedCount).toBe("1");
      expect((await call(GET, { id: "both-1" }, both)).json.event.id).toBe("both-1");
    });
  });

  describe("a tenant never sees another tenant's events", () => {
    let acmeWriter: string, acmeAuditor: string, globexWriter: string, globexAuditor: string, admin: string;
    beforeAll(async () => {
      acmeWriter = await server.token("acme", ["writer"]);
      acmeAuditor = await server.token("acme", ["auditor"]);
      globexWriter = await server.token("globex", ["writer"]);
      globexAuditor = await server.token("globex", ["auditor"]);
      admin = await server.token("", ["admin"]);
      await call(APPEND, { events: [event("acme-secret", { attributes: { t: "iso" } })] }, acmeWriter);
      await call(APPEND, { events: [event("globex-own", { attributes: { t: "iso" } })] }, globexWriter);
    });

    it("scopes searches to the token's tenant", async () => {
      const res = await call(SEARCH, { filter: { attributes: { t: "iso" } } }, globexAuditor);
      expect(res.json.events.map((e: any) => [e.id, e.tenantId])).toEqual([["globex-own", "globex"]]);
    });

    it("does not find another tenant's event by id", async () => {
      const res = await call(GET, { id: "acme-secret" }, globexAuditor);
      expect(res.status).toBe(404);
    });

    it("refuses to let a non-admin name another tenant", async () => {
      const search = await call(SEARCH, { filter: { tenantId: "acme" } }, globexAuditor);
      expect(search.status).toBe(403);
      const get = await call(GET, { id: "acme-secret", tenantId: "acme" }, globexAuditor);
      expect(get.status).toBe(403);
    });

    it("rejects events a writer addresses to another tenant, keeping the rest", async () => {
      const res = await call(APPEND, { events: [event("into-acme", { tenantId: "acme" }), event("own-globex")] }, globexWriter);
      expect(res.json.acceptedCount).toBe("1");
      expect(res.json.rejections).toEqual([
        expect.objectContaining({ field: "tenant_id", code: "permission_denied", reason: expect.stringContaining("use an admin token") }),
      ]);
      expect((await call(GET, { id: "into-acme" }, acmeAuditor)).status).toBe(404);
    });

    it("lets an admin read one tenant, or all of them", async () => {
      const one = await call(SEARCH, { filter: { attributes: { t: "iso" }, tenantId: "acme" } }, admin);
      expect(one.json.events.map((e: any) => e.id)).toEqual(["acme-secret"]);
      const all = await call(SEARCH, { filter: { attributes: { t: "iso" } } }, admin);
      expect(all.json.events.map((e: any) => e.id).sort()).toEqual(["acme-secret", "globex-own"]);
    });

    it("lets an admin write into a named tenant, and requires one", async () => {
      const res = await call(APPEND, { events: [event("by-admin", { tenantId: "initech" }), event("no-tenant")] }, admin);
      expect(res.json.acceptedCount).toBe("1");
      expect(res.json.rejections[0]).toMatchObject({ index: "1", field: "tenant_id" });
      const got = await call(GET, { id: "by-admin", tenantId: "initech" }, admin);
      expect(got.json.event.tenantId).toBe("initech");
    });
  });
});

describe("with asymmetric keys", () => {
  let jwks: Server;
  let jwksUrl: string;
  let server: TestServer;
  let pemServer: TestServer;
  const keys = {} as Record<string, Awaited<ReturnType<typeof generateKeyPair>>>;

  beforeAll(async () => {
    keys.ed = await generateKeyPair("EdDSA", { extractable: true });
    keys.es = await generateKeyPair("ES256", { extractable: true });
    keys.other = await generateKeyPair("EdDSA", { extractable: true });
    const jwk = { ...(await exportJWK(keys.ed.publicKey)), kid: "k1", alg: "EdDSA", use: "sig" };
    jwks = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    [server, pemServer] = await Promise.all([
      startServer({
        env: { AUDITLOG_JWT_SECRET: "", AUDITLOG_JWT_JWKS_URL: jwksUrl, AUDITLOG_JWT_ISSUER: "https://idp.test", AUDITLOG_JWT_AUDIENCE: "auditlog" },
      }),
      startServer({
        env: {
          AUDITLOG_JWT_SECRET: "",
          AUDITLOG_JWT_PUBLIC_KEY: await exportSPKI(keys.es.publicKey),
          AUDITLOG_JWT_ISSUER: "https://idp.test",
          AUDITLOG_JWT_AUDIENCE: "auditlog",
        },
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server.stop(), pemServer.stop()]);
    removeDataDir(server.dataDir);
    removeDataDir(pemServer.dataDir);
    jwks.close();
  });

  const claims = { sub: "svc", tenant: "acme", roles: ["auditor"] };
  const signed = (alg: string, key: CryptoKey | Uint8Array, opts: { kid?: string; iss?: string; aud?: string } = {}) => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg, kid: opts.kid }).setExpirationTime("5m");
    if (opts.iss) jwt.setIssuer(opts.iss);
    if (opts.aud) jwt.setAudience(opts.aud);
    return jwt.sign(key);
  };

  it("accepts an EdDSA token whose kid is in the JWKS, with the configured issuer and audience", async () => {
    const token = await signed("EdDSA", keys.ed.privateKey, { kid: "k1", iss: "https://idp.test", aud: "auditlog" });
    const res = await postJson(server.baseUrl, SEARCH, {}, token);
    expect(res.status).toBe(200);
  });

  it("refuses an unknown kid, a wrong issuer, a wrong audience and a key not in the JWKS", async () => {
    const cases = [
      await signed("EdDSA", keys.ed.privateKey, { kid: "k2", iss: "https://idp.test", aud: "auditlog" }),
      await signed("EdDSA", keys.ed.privateKey, { kid: "k1", iss: "https://evil.test", aud: "auditlog" }),
      await signed("EdDSA", keys.ed.privateKey, { kid: "k1", iss: "https://idp.test", aud: "other" }),
      await signed("EdDSA", keys.other.privateKey, { kid: "k1", iss: "https://idp.test", aud: "auditlog" }),
    ];
    for (const token of cases) expect((await postJson(server.baseUrl, SEARCH, {}, token)).status).toBe(401);
  });

  it("refuses HS256 tokens when no shared secret is configured", async () => {
    const res = await postJson(server.baseUrl, SEARCH, {}, await hs256({ ...claims, exp: now() + 600 }));
    expect(res.status).toBe(401);
  });

  it("accepts ES256 tokens verified with a PEM public key", async () => {
    const res = await postJson(pemServer.baseUrl, SEARCH, {}, await signed("ES256", keys.es.privateKey, { iss: "https://idp.test", aud: "auditlog" }));
    expect(res.status).toBe(200);
  });

  it("refuses an HS256 token keyed with the public key's PEM text (algorithm confusion)", async () => {
    const pem = await exportSPKI(keys.es.publicKey);
    const token = await hs256({ ...claims, exp: now() + 600, iss: "https://idp.test", aud: "auditlog" }, pem);
    expect((await postJson(pemServer.baseUrl, SEARCH, {}, token)).status).toBe(401);
  });
});
