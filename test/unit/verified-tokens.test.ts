import { jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/principal.ts";
import { mintToken } from "../../src/auth/token.ts";
import { rememberVerified, type Verified } from "../../src/auth/verified-tokens.ts";

const SECRET = "a-secret-for-the-verified-tokens-test-0123456789";
const CLAIMS = { tenant: "tenant", roles: "roles" };
const token = (subject: string, ttlSeconds = 3600) => mintToken(SECRET, { tenant: "acme", roles: ["auditor"], subject, ttlSeconds }, CLAIMS);

/** jose's real check, counted: how many times a token's signature was checked. */
function countedCheck() {
  const checked: string[] = [];
  const verify = async (jwt: string): Promise<Verified> => {
    checked.push(jwt);
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(SECRET), { algorithms: ["HS256"] });
    const principal: Principal = { subject: payload.sub!, tenant: String(payload.tenant), roles: new Set(["auditor"]) };
    return { principal, expiresAtMs: payload.exp! * 1000 };
  };
  return { checked, verify };
}

describe("verified tokens, remembered", () => {
  it("checks a token once and answers its caller again until the token expires", async () => {
    const { checked, verify } = countedCheck();
    let now = Date.now();
    const remembered = rememberVerified(verify, { maxTokens: 10, maxAgeMs: 24 * 3600_000, now: () => now, monotonicNow: () => now });
    const jwt = await token("alice", 600);
    const first = await remembered(jwt);
    expect(first.subject).toBe("alice");
    expect(await remembered(jwt)).toBe(first);
    expect(checked).toHaveLength(1);

    const expiresAtMs = JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).exp * 1000;
    now = expiresAtMs - 1;
    await remembered(jwt);
    expect(checked).toHaveLength(1);
    // At its exp it is checked again (jose then applies its own clock and tolerance), and not remembered past exp.
    now = expiresAtMs;
    await remembered(jwt);
    await remembered(jwt);
    expect(checked).toHaveLength(3);
  });

  it("never remembers a refusal: a bad token is checked and refused every time", async () => {
    const { checked, verify } = countedCheck();
    const remembered = rememberVerified(verify, { maxTokens: 10, maxAgeMs: 60_000 });
    const good = await token("mallory");
    const forged = `${good.slice(0, -4)}${good.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    await expect(remembered(forged)).rejects.toThrow(/signature verification failed/);
    await expect(remembered(forged)).rejects.toThrow(/signature verification failed/);
    expect(checked).toEqual([forged, forged]);
    // A different byte is a different token: the good one is checked on its own.
    expect((await remembered(good)).subject).toBe("mallory");
    expect(checked).toHaveLength(3);
  });

  it("trusts a verification for at most maxAgeMs, however far off exp is", async () => {
    const { checked, verify } = countedCheck();
    let monotonic = 0;
    const remembered = rememberVerified(verify, { maxTokens: 10, maxAgeMs: 60_000, monotonicNow: () => monotonic });
    const jwt = await token("bob", 3600);
    await remembered(jwt);
    monotonic += 59_999;
    await remembered(jwt);
    expect(checked).toHaveLength(1);
    monotonic += 1;
    await remembered(jwt);
    expect(checked).toHaveLength(2);
  });

  it("counts maxAgeMs on a clock that does not step back with the wall clock", async () => {
    const { checked, verify } = countedCheck();
    let wall = Date.now();
    let monotonic = 0;
    const remembered = rememberVerified(verify, { maxTokens: 10, maxAgeMs: 60_000, now: () => wall, monotonicNow: () => monotonic });
    const jwt = await token("carol", 3600);
    await remembered(jwt);
    wall -= 3600_000; // the wall clock steps back an hour
    monotonic += 60_000;
    await remembered(jwt);
    expect(checked).toHaveLength(2);
  });

  it("counts one entry per token when two calls check the same token at once", async () => {
    const { checked, verify } = countedCheck();
    const remembered = rememberVerified(verify, { maxTokens: 2, maxAgeMs: 60_000 });
    const [a, b] = await Promise.all(["a", "b"].map((s) => token(s)));
    await remembered(a);
    await Promise.all([remembered(b), remembered(b)]);
    // Both remembered: b's second check replaced its first instead of pushing a out.
    await remembered(a);
    await remembered(b);
    expect(checked).toEqual([a, b, b]);
  });

  it("remembers at most maxTokens, forgetting the oldest first", async () => {
    const { checked, verify } = countedCheck();
    const remembered = rememberVerified(verify, { maxTokens: 2, maxAgeMs: 60_000 });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((s) => token(s)));
    for (const jwt of [a, b, c]) await remembered(jwt);
    expect(checked).toEqual([a, b, c]);
    await remembered(c); // still remembered
    await remembered(a); // forgotten when c came: checked again, and now b is the one forgotten
    await remembered(c);
    await remembered(b);
    expect(checked).toEqual([a, b, c, a, b]);
  });
});
