/**
 * JWT attacks. Each forged token claims as much as it can (admin of tenant B,
 * every role), so that if the server accepted it the answer would hold B's
 * data. Every attack is tried on every surface that takes a token (Connect
 * JSON and gRPC, for reading and writing, the export download and the tail
 * WebSocket) and must be refused with UNAUTHENTICATED and a message saying
 * why, with no data in the answer. A control beside each group shows the same
 * claims, properly signed, do get in.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, connectClients } from "../helpers/clients.ts";
import { removeDataDir, startServer, TEST_SECRET, type TestServer } from "../helpers/server.ts";
import { callJson, Code, expectConnectError, failureOf, get, RPC, tailUpgrade, type RawAnswer } from "./support.ts";

const ISSUER = "https://idp.security.test";
const AUDIENCE = "auditlog-security";
const TENANT_A = "jwt-tenant-a";
const TENANT_B = "jwt-tenant-b";
const SECRET_A = "TOP-SECRET-OF-A";
const SECRET_B = "TOP-SECRET-OF-B";

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const enc = (text: string) => new TextEncoder().encode(text);

/** The most a token can claim: every role, in tenant B. */
const GREEDY = { sub: "mallory", tenant: TENANT_B, roles: ["admin", "auditor", "writer"] };

const hs = (claims: Record<string, unknown>, secret: string | Uint8Array = TEST_SECRET, alg = "HS256", header: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT", ...header }).sign(typeof secret === "string" ? enc(secret) : secret);

/** An unsigned token: `alg` as given, an empty (or given) signature. */
const unsigned = (claims: Record<string, unknown>, alg = "none", signature = "") =>
  `${b64({ alg, typ: "JWT" })}.${b64(claims)}.${signature}`;

/** Replaces a signed token's payload, keeping its header and signature. */
const withPayload = (token: string, claims: Record<string, unknown>) => {
  const [header, , signature] = token.split(".");
  return `${header}.${b64(claims)}.${signature}`;
};

const grpcByUrl = new Map<string, ReturnType<typeof connectClients>>();
/** One gRPC client set per server, reused by every attempt. */
const grpcClients = (baseUrl: string) => {
  if (!grpcByUrl.has(baseUrl)) grpcByUrl.set(baseUrl, connectClients(baseUrl, "grpc"));
  return grpcByUrl.get(baseUrl)!;
};

interface Seeded {
  server: TestServer;
  /** A token the server accepts with admin rights, to check nothing was written. */
  admin: string;
  /** The id of a stored event of tenant B. */
  secretId: string;
}

/** Stores one event per tenant, each carrying a secret, through a token the server accepts. */
async function seed(server: TestServer, writerA: string, writerB: string): Promise<void> {
  for (const [token, tenant, secret] of [
    [writerA, TENANT_A, SECRET_A],
    [writerB, TENANT_B, SECRET_B],
  ]) {
    const res = await callJson(server.baseUrl, RPC.append, {
      events: [{ id: `${tenant}-secret`, type: "jwt.secret", action: "CREATE", actor: { id: "seed" }, message: secret, attributes: { secret } }],
    }, token);
    expect(res.json, res.text).toMatchObject({ acceptedCount: "1" });
  }
}

/**
 * Tries a token on every surface. Each answer must be UNAUTHENTICATED with a
 * message matching `why`, and must hold neither tenant's secret.
 */
async function expectRefusedEverywhere(target: Seeded, token: string, why: RegExp): Promise<void> {
  const { server } = target;
  const marker = `forged-${createHash("sha256").update(token).digest("hex").slice(0, 12)}`;
  const forgedEvent = { id: marker, tenantId: TENANT_B, type: "jwt.forged", action: "CREATE", actor: { id: "mallory" }, attributes: { forged: "yes" } };
  const json: [string, RawAnswer][] = [
    ["Connect JSON SearchEvents", await callJson(server.baseUrl, RPC.search, { filter: { tenantId: TENANT_B } }, token)],
    ["Connect JSON GetEvent", await callJson(server.baseUrl, RPC.get, { id: target.secretId, tenantId: TENANT_B }, token)],
    ["Connect JSON Append", await callJson(server.baseUrl, RPC.append, { events: [forgedEvent] }, token)],
    ["GET /v1/export", await get(server.baseUrl, `/v1/export?tenant_id=${TENANT_B}`, token)],
  ];
  for (const [surface, res] of json) {
    expectConnectError(res, "unauthenticated", surface);
    expect(res.json.message, surface).toMatch(why);
    expect(res.text, surface).not.toContain(SECRET_A);
    expect(res.text, surface).not.toContain(SECRET_B);
  }

  const socket = await tailUpgrade(server.baseUrl, token, `tenant_id=${TENANT_B}`);
  expect(socket.opened, "the tail WebSocket must not open").toBe(false);
  if (!socket.opened) {
    expect(socket.status).toBe(401);
    expect(JSON.parse(socket.body)).toEqual({ code: "unauthenticated", message: expect.stringMatching(why) });
  }

  const grpc = grpcClients(server.baseUrl);
  for (const [surface, call] of [
    ["gRPC SearchEvents", () => grpc.query.searchEvents({ filter: { tenantId: TENANT_B } }, bearer(token))],
    ["gRPC Append", () => grpc.ingest.append({ events: [forgedEvent] }, bearer(token))],
  ] as const) {
    const err = await failureOf(call);
    expect(err.code, `${surface}: ${err.message}`).toBe(Code.Unauthenticated);
    expect(err.rawMessage, surface).toMatch(why);
  }

  // Nothing the forged token sent was stored, in any tenant.
  const stored = await callJson(server.baseUrl, RPC.search, { filter: { attributes: { forged: "yes" } } }, target.admin);
  expect(stored.status).toBe(200);
  expect(stored.json.events ?? []).toEqual([]);
}

/** The control: a token the server accepts reads tenant B's secret with these claims. */
async function expectAccepted(target: Seeded, token: string): Promise<void> {
  const res = await callJson(target.server.baseUrl, RPC.get, { id: target.secretId, tenantId: TENANT_B }, token);
  expect(res.status, res.text).toBe(200);
  expect(res.json.event.message).toBe(SECRET_B);
}

describe("a server verifying HS256 tokens with its shared secret", () => {
  const target = {} as Seeded;
  const valid = (claims: Record<string, unknown>) => hs({ exp: now() + 600, ...claims });

  beforeAll(async () => {
    target.server = await startServer();
    target.admin = await valid({ sub: "root", roles: ["admin"] });
    target.secretId = `${TENANT_B}-secret`;
    await seed(target.server, await valid({ sub: "w", tenant: TENANT_A, roles: ["writer"] }), await valid({ sub: "w", tenant: TENANT_B, roles: ["writer"] }));
  });
  afterAll(async () => {
    await target.server.stop();
    removeDataDir(target.server.dataDir);
  });

  it("control: the greedy claims, signed with the server's secret, read tenant B", async () => {
    await expectAccepted(target, await valid(GREEDY));
  });

  it('refuses alg "none" (an unsigned token), however the name is spelled and whatever signature it carries', async () => {
    await expectRefusedEverywhere(target, unsigned({ ...GREEDY, exp: now() + 600 }), /alg "none" are not accepted/);
    for (const alg of ["None", "NONE", "nOnE"]) {
      await expectRefusedEverywhere(target, unsigned({ ...GREEDY, exp: now() + 600 }, alg), new RegExp(`alg "${alg}" are not accepted`));
    }
    // A real signature pasted behind an alg "none" header proves nothing either.
    const realSignature = (await valid(GREEDY)).split(".")[2];
    await expectRefusedEverywhere(target, unsigned({ ...GREEDY, exp: now() + 600 }, "none", realSignature), /alg "none" are not accepted/);
  });

  it("refuses a token without an alg, or with an alg the server does not use (HS384, HS512)", async () => {
    const noAlg = `${b64({ typ: "JWT" })}.${b64({ ...GREEDY, exp: now() + 600 })}.`;
    await expectRefusedEverywhere(target, noAlg, /not accepted|malformed/);
    for (const alg of ["HS384", "HS512"]) {
      await expectRefusedEverywhere(target, await hs({ ...GREEDY, exp: now() + 600 }, TEST_SECRET, alg), new RegExp(`alg "${alg}" are not accepted`));
    }
  });

  it("refuses a token whose payload was changed after signing (tenant, roles), keeping the signature", async () => {
    const realA = await valid({ sub: "alice", tenant: TENANT_A, roles: ["auditor"] });
    const exp = now() + 600;
    const forgeries = [
      { sub: "alice", tenant: TENANT_B, roles: ["auditor"], exp },
      { sub: "alice", tenant: TENANT_A, roles: ["auditor", "admin"], exp },
      { sub: "alice", roles: ["admin"], exp },
      { ...GREEDY, exp },
    ];
    for (const claims of forgeries) {
      await expectRefusedEverywhere(target, withPayload(realA, claims), /signature does not verify; it was signed with another key or altered/);
    }
    // The signature of another token, or none at all, does not make it valid either.
    const [header, payload] = realA.split(".");
    await expectRefusedEverywhere(target, `${header}.${payload}.`, /signature does not verify|malformed/);
    const otherSignature = (await valid({ sub: "bob", tenant: TENANT_B, roles: ["admin"] })).split(".")[2];
    await expectRefusedEverywhere(target, `${header}.${b64(GREEDY)}.${otherSignature}`, /signature does not verify/);
  });

  it("refuses a token signed with a guessed secret", async () => {
    for (const guess of ["secret", "auditlog", "changeme", TEST_SECRET.toUpperCase()]) {
      await expectRefusedEverywhere(target, await hs({ ...GREEDY, exp: now() + 600 }, guess), /signature does not verify/);
    }
  });

  it("refuses an expired token, and one expired just beyond the 30 s clock tolerance", async () => {
    await expectRefusedEverywhere(target, await hs({ ...GREEDY, exp: now() - 3600 }), /^the token has expired; mint a new one$/);
    await expectRefusedEverywhere(target, await hs({ ...GREEDY, exp: now() - 45 }), /^the token has expired; mint a new one$/);
    // Within the tolerance a slightly slow clock is forgiven.
    await expectAccepted(target, await hs({ ...GREEDY, exp: now() - 5 }));
  });

  it("refuses a token without exp (it would never expire) or without sub (nobody to hold to account)", async () => {
    await expectRefusedEverywhere(target, await hs({ ...GREEDY }), /the token's "exp" claim is not acceptable/);
    await expectRefusedEverywhere(target, await hs({ ...GREEDY, sub: undefined, exp: now() + 600 }), /the token's "sub" claim is not acceptable/);
  });

  it("refuses a token that is not valid yet (nbf beyond the 30 s clock tolerance)", async () => {
    await expectRefusedEverywhere(target, await hs({ ...GREEDY, exp: now() + 7200, nbf: now() + 3600 }), /the token's "nbf" claim is not acceptable/);
    await expectRefusedEverywhere(target, await hs({ ...GREEDY, exp: now() + 600, nbf: now() + 45 }), /the token's "nbf" claim is not acceptable/);
    await expectAccepted(target, await hs({ ...GREEDY, exp: now() + 600, nbf: now() + 5 }));
  });

  it("refuses a tenant claim that is not a string, instead of reading it as no tenant or several", async () => {
    for (const tenant of [[TENANT_A, TENANT_B], { id: TENANT_B }, 42]) {
      await expectRefusedEverywhere(target, await valid({ sub: "s", tenant, roles: ["auditor", "writer"] }), /has no "tenant" claim/);
    }
  });

  describe("a valid token of tenant A used against tenant B", () => {
    let auditorA: string;
    let writerA: string;
    beforeAll(async () => {
      auditorA = await valid({ sub: "alice", tenant: TENANT_A, roles: ["auditor"] });
      writerA = await valid({ sub: "svc-a", tenant: TENANT_A, roles: ["writer"] });
    });

    it("is PERMISSION_DENIED when it names tenant B, over Connect JSON, gRPC and the export, and shows nothing of B", async () => {
      const answers: [string, RawAnswer][] = [
        ["SearchEvents", await callJson(target.server.baseUrl, RPC.search, { filter: { tenantId: TENANT_B } }, auditorA)],
        ["GetEvent", await callJson(target.server.baseUrl, RPC.get, { id: target.secretId, tenantId: TENANT_B }, auditorA)],
        ["GET /v1/export", await get(target.server.baseUrl, `/v1/export?tenant_id=${TENANT_B}`, auditorA)],
      ];
      for (const [surface, res] of answers) {
        expectConnectError(res, "permission_denied", surface);
        expect(res.json.message, surface).toMatch(/is not the token's tenant .*; only admins may read other tenants/);
        expect(res.text, surface).not.toContain(SECRET_B);
      }
      const grpc = grpcClients(target.server.baseUrl);
      const err = await failureOf(grpc.query.searchEvents({ filter: { tenantId: TENANT_B } }, bearer(auditorA)));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toMatch(/only admins may read other tenants/);
    });

    it("without naming a tenant, sees only tenant A's events, and B's event id is not found", async () => {
      const search = await callJson(target.server.baseUrl, RPC.search, { filter: { types: ["jwt.secret"] } }, auditorA);
      expect(search.json.events.map((e: any) => [e.id, e.tenantId, e.message])).toEqual([[`${TENANT_A}-secret`, TENANT_A, SECRET_A]]);
      const grpc = grpcClients(target.server.baseUrl);
      const viaGrpc = await grpc.query.searchEvents({ filter: { types: ["jwt.secret"] } }, bearer(auditorA));
      expect(viaGrpc.events.map((e) => e.tenantId)).toEqual([TENANT_A]);
      const got = await callJson(target.server.baseUrl, RPC.get, { id: target.secretId }, auditorA);
      expectConnectError(got, "not_found");
      expect(got.text).not.toContain(SECRET_B);
    });

    it("cannot write into tenant B: the event is rejected as permission_denied, and B does not get it", async () => {
      const res = await callJson(target.server.baseUrl, RPC.append, {
        events: [{ id: "a-into-b", tenantId: TENANT_B, type: "jwt.forged", action: "CREATE", actor: { id: "svc-a" } }],
      }, writerA);
      // Protobuf JSON leaves out zeros: no acceptedCount, no index for the first event.
      expect(res.json.acceptedCount ?? "0").toBe("0");
      expect(res.json.rejections).toEqual([
        { field: "tenant_id", code: "permission_denied", reason: expect.stringContaining(`tenant_id "${TENANT_B}" is not the token's tenant`) },
      ]);
      expectConnectError(await callJson(target.server.baseUrl, RPC.get, { id: "a-into-b", tenantId: TENANT_B }, target.admin), "not_found");
    });
  });
});

describe("a server verifying with an RSA public key (AUDITLOG_JWT_PUBLIC_KEY, issuer and audience)", () => {
  const target = {} as Seeded;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let other: Awaited<ReturnType<typeof generateKeyPair>>;
  let pem: string;
  const rs = (claims: Record<string, unknown>, key?: CryptoKey, alg = "RS256") =>
    new SignJWT({ iss: ISSUER, aud: AUDIENCE, exp: now() + 600, ...claims }).setProtectedHeader({ alg, typ: "JWT" }).sign(key ?? rsa.privateKey);

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256", { extractable: true });
    other = await generateKeyPair("RS256", { extractable: true });
    pem = await exportSPKI(rsa.publicKey);
    target.server = await startServer({
      env: { AUDITLOG_JWT_SECRET: "", AUDITLOG_JWT_PUBLIC_KEY: pem, AUDITLOG_JWT_ISSUER: ISSUER, AUDITLOG_JWT_AUDIENCE: AUDIENCE },
    });
    target.admin = await rs({ sub: "root", roles: ["admin"] });
    target.secretId = `${TENANT_B}-secret`;
    await seed(target.server, await rs({ sub: "w", tenant: TENANT_A, roles: ["writer"] }), await rs({ sub: "w", tenant: TENANT_B, roles: ["writer"] }));
  });
  afterAll(async () => {
    await target.server.stop();
    removeDataDir(target.server.dataDir);
  });

  it("control: the greedy claims, signed RS256 with the private key, read tenant B", async () => {
    await expectAccepted(target, await rs(GREEDY));
  });

  it("refuses HS256 tokens keyed with the public key's PEM text (HS/RS algorithm confusion)", async () => {
    const claims = { ...GREEDY, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 };
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    const keyings: (string | Uint8Array)[] = [pem, pem.trim(), pem.replace(/\n/g, "\r\n"), new Uint8Array(der)];
    for (const secret of keyings) {
      for (const alg of ["HS256", "HS384", "HS512"]) {
        await expectRefusedEverywhere(target, await hs(claims, secret, alg), new RegExp(`tokens signed with alg "${alg}" are not accepted by this server`));
      }
    }
  });

  it('refuses alg "none" here too', async () => {
    await expectRefusedEverywhere(target, unsigned({ ...GREEDY, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }), /alg "none" are not accepted/);
  });

  it("refuses algorithms the key was not configured for: RSA-PSS with the very same key, EC, EdDSA", async () => {
    const claims = { ...GREEDY, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 };
    const pss = await new SignJWT(claims).setProtectedHeader({ alg: "PS256" }).sign((await importPKCS8(await exportPKCS8(rsa.privateKey), "PS256")) as CryptoKey);
    await expectRefusedEverywhere(target, pss, /tokens signed with alg "PS256" are not accepted by this server/);
    for (const alg of ["ES256", "EdDSA"]) {
      const key = await generateKeyPair(alg);
      await expectRefusedEverywhere(target, await new SignJWT(claims).setProtectedHeader({ alg }).sign(key.privateKey), new RegExp(`alg "${alg}" are not accepted`));
    }
  });

  it("refuses a token signed with another RSA key", async () => {
    await expectRefusedEverywhere(target, await rs(GREEDY, other.privateKey), /signature does not verify/);
  });

  it("refuses a wrong issuer, or none", async () => {
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, iss: "https://evil.test" }), /the token's "iss" claim is not acceptable/);
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, iss: undefined }), /"iss" claim/);
  });

  it("refuses a wrong audience, an audience list without ours, or none", async () => {
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, aud: "another-app" }), /the token's "aud" claim is not acceptable/);
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, aud: ["another-app", "yet-another"] }), /"aud" claim/);
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, aud: undefined }), /"aud" claim/);
  });

  it("refuses an expired and a not-yet-valid RS256 token", async () => {
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, exp: now() - 120 }), /^the token has expired; mint a new one$/);
    await expectRefusedEverywhere(target, await rs({ ...GREEDY, nbf: now() + 300 }), /"nbf" claim/);
  });

  it("refuses a tampered RS256 payload", async () => {
    const real = await rs({ sub: "alice", tenant: TENANT_A, roles: ["auditor"] });
    await expectRefusedEverywhere(target, withPayload(real, { ...GREEDY, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }), /signature does not verify/);
  });
});

describe("a server verifying with a JWKS (keys picked by kid)", () => {
  const target = {} as Seeded;
  let jwks: Server;
  let attackerJwks: Server;
  let attackerJwksHits = 0;
  let attackerUrl: string;
  let ec: Awaited<ReturnType<typeof generateKeyPair>>;
  let attacker: Awaited<ReturnType<typeof generateKeyPair>>;
  const es = (claims: Record<string, unknown>, header: Record<string, unknown> = { kid: "k1" }, key?: CryptoKey) =>
    new SignJWT({ iss: ISSUER, aud: AUDIENCE, exp: now() + 600, ...claims })
      .setProtectedHeader({ alg: "ES256", typ: "JWT", ...header })
      .sign(key ?? ec.privateKey);

  const serve = async (body: () => unknown, onHit = () => {}) => {
    const server = createServer((_req, res) => {
      onHit();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body()));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json` };
  };

  beforeAll(async () => {
    ec = await generateKeyPair("ES256", { extractable: true });
    attacker = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(ec.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: "evil", alg: "ES256", use: "sig" };
    const real = await serve(() => ({ keys: [jwk] }));
    const evil = await serve(() => ({ keys: [attackerJwk] }), () => attackerJwksHits++);
    jwks = real.server;
    attackerJwks = evil.server;
    attackerUrl = evil.url;
    target.server = await startServer({
      env: { AUDITLOG_JWT_SECRET: "", AUDITLOG_JWT_JWKS_URL: real.url, AUDITLOG_JWT_ISSUER: ISSUER, AUDITLOG_JWT_AUDIENCE: AUDIENCE },
    });
    target.admin = await es({ sub: "root", roles: ["admin"] });
    target.secretId = `${TENANT_B}-secret`;
    await seed(target.server, await es({ sub: "w", tenant: TENANT_A, roles: ["writer"] }), await es({ sub: "w", tenant: TENANT_B, roles: ["writer"] }));
  });
  afterAll(async () => {
    await target.server.stop();
    removeDataDir(target.server.dataDir);
    jwks.close();
    attackerJwks.close();
  });

  it("control: the greedy claims, signed ES256 with the key of kid k1, read tenant B", async () => {
    await expectAccepted(target, await es(GREEDY));
  });

  it("refuses a kid the JWKS does not have, including path- and SQL-shaped kids", async () => {
    for (const kid of ["k2", "K1", "k1 ", "../../../../etc/passwd", "' OR 1=1 --", "k1\u0000", "x".repeat(2_000)]) {
      await expectRefusedEverywhere(target, await es(GREEDY, { kid }), /no key in the JWKS matches the token's kid/);
    }
  });

  it("refuses kid k1 signed with another key", async () => {
    await expectRefusedEverywhere(target, await es(GREEDY, { kid: "k1" }, attacker.privateKey), /signature does not verify/);
  });

  it("ignores a key the token brings along (jwk header) or points to (jku header), and never fetches the jku", async () => {
    const embedded = await exportJWK(attacker.publicKey);
    await expectRefusedEverywhere(target, await es(GREEDY, { kid: "k1", jwk: embedded }, attacker.privateKey), /signature does not verify/);
    await expectRefusedEverywhere(target, await es(GREEDY, { kid: "evil", jku: attackerUrl }, attacker.privateKey), /no key in the JWKS matches/);
    expect(attackerJwksHits).toBe(0);
  });

  it("refuses HS256 tokens keyed with the JWKS key's JSON (algorithm confusion)", async () => {
    const jwkText = JSON.stringify({ ...(await exportJWK(ec.publicKey)), kid: "k1", alg: "ES256", use: "sig" });
    await expectRefusedEverywhere(
      target,
      await hs({ ...GREEDY, iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }, jwkText, "HS256", { kid: "k1" }),
      /tokens signed with alg "HS256" are not accepted by this server/,
    );
  });

  it("refuses a wrong issuer and a wrong audience on a correctly signed token", async () => {
    await expectRefusedEverywhere(target, await es({ ...GREEDY, iss: "https://evil.test" }), /"iss" claim is not acceptable/);
    await expectRefusedEverywhere(target, await es({ ...GREEDY, aud: "another-app" }), /"aud" claim is not acceptable/);
  });

  it("refuses an expired and a not-yet-valid ES256 token", async () => {
    await expectRefusedEverywhere(target, await es({ ...GREEDY, exp: now() - 120 }), /^the token has expired; mint a new one$/);
    await expectRefusedEverywhere(target, await es({ ...GREEDY, nbf: now() + 300 }), /"nbf" claim/);
  });
});

describe("a JWKS whose keys change (AUDITLOG_JWT_JWKS_MAX_AGE_SEC = 1)", () => {
  let server: TestServer;
  let jwks: Server;
  let keys: object[] = [];
  let hits = 0;
  /** How the JWKS server answers: the set, an error status, a body that is not a key set, or no answer (connection reset). */
  let mode: "ok" | "503" | "malformed" | "reset" = "ok";
  let k1: Awaited<ReturnType<typeof generateKeyPair>>;
  let k2: Awaited<ReturnType<typeof generateKeyPair>>;
  const token = (kid: string, key: CryptoKey, sub: string, claims: Record<string, unknown> = {}) =>
    new SignJWT({ iss: ISSUER, aud: AUDIENCE, exp: now() + 600, sub, tenant: TENANT_A, roles: ["auditor"], ...claims })
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid })
      .sign(key);
  const search = (bearerToken: string) => callJson(server.baseUrl, RPC.search, { filter: { tenantId: TENANT_A } }, bearerToken);
  const jwkOf = async (key: CryptoKey, kid: string) => ({ ...(await exportJWK(key)), kid, alg: "ES256", use: "sig" });

  /** Asks with `bearerToken` until `done` says the answer is the awaited one (at most 10 s; the default max age is 300 s). */
  async function askUntil(bearerToken: string | (() => Promise<string>), done: (res: RawAnswer) => boolean): Promise<RawAnswer> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await search(typeof bearerToken === "string" ? bearerToken : await bearerToken());
      if (done(res) || Date.now() > deadline) return res;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Runs `body` while the JWKS server answers in `outage` mode. */
  async function during<T>(outage: typeof mode, body: () => Promise<T>): Promise<T> {
    mode = outage;
    try {
      return await body();
    } finally {
      mode = "ok";
    }
  }

  beforeAll(async () => {
    k1 = await generateKeyPair("ES256", { extractable: true });
    k2 = await generateKeyPair("ES256", { extractable: true });
    keys = [await jwkOf(k1.publicKey, "k1")];
    jwks = createServer((req, res) => {
      hits++;
      if (mode === "reset") req.socket.destroy();
      else if (mode === "503") res.writeHead(503).end();
      else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(mode === "malformed" ? { keys: "not a list" } : { keys }));
    });
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    server = await startServer({
      env: {
        AUDITLOG_JWT_SECRET: "",
        AUDITLOG_JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
        AUDITLOG_JWT_ISSUER: ISSUER,
        AUDITLOG_JWT_AUDIENCE: AUDIENCE,
        AUDITLOG_JWT_JWKS_MAX_AGE_SEC: "1",
      },
    });
  });
  afterAll(async () => {
    await server.stop();
    removeDataDir(server.dataDir);
    jwks.close();
  });

  it("takes a key rotated in, and refuses the key rotated out once the set was fetched again, remembered tokens included", async () => {
    const old = await token("k1", k1.privateKey, "auditor");
    expect((await search(old)).status).toBe(200);

    keys = [await jwkOf(k2.publicKey, "k2")];
    const rotatedIn = await askUntil(await token("k2", k2.privateKey, "auditor"), (res) => res.status === 200);
    expect(rotatedIn.status, rotatedIn.text).toBe(200);

    // A token of the removed key not seen before is refused at once; the one remembered from before, within the max age.
    expectConnectError(await search(await token("k1", k1.privateKey, "someone-else")), "unauthenticated");
    const remembered = await askUntil(old, (res) => res.status !== 200);
    expectConnectError(remembered, "unauthenticated");
    expect(remembered.json.message).toMatch(/no key in the JWKS matches the token's kid/);
  });

  it("refuses a removed key once the set's max age has passed, with no new kid to prompt a fetch", async () => {
    keys = [await jwkOf(k1.publicKey, "k1"), await jwkOf(k2.publicKey, "k2")];
    const k2Token = await token("k2", k2.privateKey, "steady");
    const k1Token = await token("k1", k1.privateKey, "leaving");
    // Until k1 is back in the set the server has fetched, its token is refused.
    expect((await askUntil(k1Token, (res) => res.status === 200)).status).toBe(200);
    const fetchesBefore = hits;
    keys = [await jwkOf(k2.publicKey, "k2")];
    const refused = await askUntil(k1Token, (res) => res.status !== 200);
    expectConnectError(refused, "unauthenticated");
    expect(refused.json.message).toMatch(/no key in the JWKS matches the token's kid/);
    // k1 was in the set the server held: only the set's age can have sent it back to the JWKS.
    expect(hits).toBeGreaterThan(fetchesBefore);
    expect((await search(k2Token)).status).toBe(200);
  });

  it.each(["503", "malformed", "reset"] as const)(
    "says UNAVAILABLE with a retry-after, not that the token is bad, while the JWKS answers %s, asks it at most once per 5 s, and recovers",
    async (outage) => {
      let n = 0;
      const fresh = () => token("k2", k2.privateKey, `${outage}-${n++}`);
      expect((await search(await fresh())).status).toBe(200);
      await during(outage, async () => {
        const refused = await askUntil(fresh, (res) => res.status !== 200);
        expectConnectError(refused, "unavailable");
        expect(refused.json.message).toMatch(/identity provider's keys \(AUDITLOG_JWT_JWKS_URL\) could not be fetched or used \(.+\); try again/);
        // Within the next 5 s the identity provider is not asked again, however many calls come.
        const fetches = hits;
        for (let i = 0; i < 10; i++) expectConnectError(await search(await fresh()), "unavailable");
        expect(hits).toBe(fetches);
        const viaGrpc = await failureOf(grpcClients(server.baseUrl).query.searchEvents({ filter: { tenantId: TENANT_A } }, bearer(await fresh())));
        expect(viaGrpc.code).toBe(Code.Unavailable);
        expect(viaGrpc.metadata.get("retry-after")).toBe("5");
        // A token that is bad whatever the key says is still called bad.
        expectConnectError(await search(await token("k2", k2.privateKey, "late", { exp: now() - 120 })), "unauthenticated");
        expectConnectError(await search(await token("k2", k2.privateKey, "elsewhere", { aud: "another-app" })), "unauthenticated");
      });
      const recovered = await askUntil(fresh, (res) => res.status === 200);
      expect(recovered.status, recovered.text).toBe(200);
    },
  );
});
