import { describe, expect, it } from "vitest";
import { AuditlogError } from "../../src/errors.ts";
import { canonicalHash, decodePageToken, encodePageToken, type PageCursor } from "../../src/query/page-token.ts";

const cursor: PageCursor = {
  snapshotUs: 1_767_225_600_123_456,
  timeUs: 1_767_225_000_000_001,
  id: "evt-42/ü:@",
  tenantId: "acme",
  filterHash: "abcdEFGH12345678",
};

const tokenOf = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");

function decodeError(token: string, filterHash = cursor.filterHash): AuditlogError {
  try {
    decodePageToken(token, filterHash);
  } catch (err) {
    expect(err).toBeInstanceOf(AuditlogError);
    return err as AuditlogError;
  }
  throw new Error("expected decodePageToken to throw");
}

describe("page tokens", () => {
  it("decode what encode produced", () => {
    expect(decodePageToken(encodePageToken(cursor), cursor.filterHash)).toEqual(cursor);
  });

  it("round-trip the extremes of safe integers and empty strings", () => {
    const edge: PageCursor = { snapshotUs: Number.MAX_SAFE_INTEGER, timeUs: 0, id: "", tenantId: "", filterHash: "" };
    expect(decodePageToken(encodePageToken(edge), "")).toEqual(edge);
  });

  it("are URL-safe text", () => {
    expect(encodePageToken({ ...cursor, id: "???>>>~~~" })).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ["empty", ""],
    ["not base64 at all", "%%%***!!!"],
    ["base64 of text that is not JSON", Buffer.from("not json").toString("base64url")],
    ["truncated", encodePageToken(cursor).slice(0, 20)],
  ])("reject a %s token as invalid_argument", (_name, token) => {
    const err = decodeError(token);
    expect(err.kind).toBe("invalid_argument");
    expect(err.message).toContain("page_token is not valid");
  });

  it.each([
    ["an object", { snapshotUs: 1, timeUs: 2 }],
    ["a string", "token"],
    ["null", null],
    ["too short an array", [1, 1, 2, "id", "acme"]],
    ["too long an array", [1, 1, 2, "id", "acme", cursor.filterHash, "extra"]],
    ["another version", [2, 1, 2, "id", "acme", cursor.filterHash]],
    ["a fractional snapshot", [1, 1.5, 2, "id", "acme", cursor.filterHash]],
    ["a string time", [1, 1, "2", "id", "acme", cursor.filterHash]],
    ["an unsafe integer time", [1, 1, 2 ** 53, "id", "acme", cursor.filterHash]],
    ["a numeric id", [1, 1, 2, 7, "acme", cursor.filterHash]],
    ["a null tenant", [1, 1, 2, "id", null, cursor.filterHash]],
    ["a numeric hash", [1, 1, 2, "id", "acme", 5]],
  ])("reject JSON of the wrong shape (%s) as invalid_argument", (_name, body) => {
    const err = decodeError(tokenOf(body));
    expect(err.kind).toBe("invalid_argument");
    expect(err.message).toBe(
      "page_token is not valid: pass the next_page_token of the previous response unchanged, with the same filter",
    );
  });

  it("reject a token made for a different filter", () => {
    const err = decodeError(encodePageToken(cursor), "someOtherHash000");
    expect(err.kind).toBe("invalid_argument");
    expect(err.message).toBe("page_token belongs to a different filter; start again without a page_token");
  });
});

describe("canonicalHash", () => {
  it("does not depend on object key order, at any depth", () => {
    const a = { types: ["a", "b"], filter: { actorIds: ["u"], attributes: { x: "1", y: "2" } }, scope: { kind: "tenant", tenant: "acme" } };
    const b = { scope: { tenant: "acme", kind: "tenant" }, filter: { attributes: { y: "2", x: "1" }, actorIds: ["u"] }, types: ["a", "b"] };
    expect(canonicalHash(a)).toBe(canonicalHash(b));
  });

  it("is sensitive to values", () => {
    expect(canonicalHash({ tenant: "acme" })).not.toBe(canonicalHash({ tenant: "globex" }));
    expect(canonicalHash({ n: 1 })).not.toBe(canonicalHash({ n: "1" }));
    expect(canonicalHash({ a: { b: 1 } })).not.toBe(canonicalHash({ a: { b: 2 } }));
  });

  it("is sensitive to keys", () => {
    expect(canonicalHash({ a: 1 })).not.toBe(canonicalHash({ b: 1 }));
  });

  it("is sensitive to array order", () => {
    expect(canonicalHash(["a", "b"])).not.toBe(canonicalHash(["b", "a"]));
  });

  it("tells a filter from its absence", () => {
    expect(canonicalHash([{ kind: "all" }, null])).not.toBe(canonicalHash([{ kind: "all" }, {}]));
  });

  it("is a stable 16-character URL-safe digest", () => {
    const h = canonicalHash({ a: [1, 2, { b: null }] });
    expect(h).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(canonicalHash({ a: [1, 2, { b: null }] })).toBe(h);
  });
});
