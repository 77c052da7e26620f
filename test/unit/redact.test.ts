import { describe, expect, it } from "vitest";
import { Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";
import {
  compileRedactor,
  DEFAULT_REDACTION_RULES,
  mergeRules,
  REDACTED,
  type RedactionRules,
} from "../../src/ingest/redact.ts";
import type { EventRecord } from "../../src/store/event-row.ts";

/** A stored record with nothing sensitive in it, plus overrides. */
function record(overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    tenantId: "acme",
    id: "evt-1",
    timeUs: 1_768_478_400_000_000,
    utcOffsetMinutes: 60,
    type: "customer.account.updated",
    action: "UPDATE",
    outcome: Outcome.SUCCESS,
    severity: Severity.INFO,
    actorId: "u-7",
    actorType: "user",
    actorName: "Ann",
    actorSessionId: "s-1",
    actorIp: "10.0.0.7",
    actorUserAgent: "curl/8",
    resourceType: "account",
    resourceId: "acct-9",
    resourceName: "Main account",
    source: "billing-api",
    requestId: "req-3",
    message: "plan changed",
    attributes: { plan: "pro" },
    before: "",
    after: "",
    ...overrides,
  };
}

const redactDefault = compileRedactor(DEFAULT_REDACTION_RULES);
const withEmails = compileRedactor(mergeRules(DEFAULT_REDACTION_RULES, { detectors: { emails: true } }));

/** The message after redaction with the default rules. */
function scrubbed(message: string, redact = redactDefault): string {
  const r = record({ message });
  redact(r);
  return r.message;
}

const json = (text: string) => JSON.parse(text) as unknown;

describe("redaction by key", () => {
  it.each([
    "password", "Password", "PASSWORD", "new_password", "passwordConfirmation", "db-passwd", "user_pwd",
    "X-Api-Key", "apiKey", "api-key", "API_KEY", "stripeApiKeyValue",
    "client_secret", "clientSecret", "Authorization", "proxy-authorization", "set-cookie", "Cookie",
    "refreshToken", "access_token", "private_key", "privateKeyPem", "aws_credentials", "card_number", "cvv", "CVC2",
    "SSN", "ssn", "S.S.N", "social_security_number",
  ])("masks the attribute %j", (key) => {
    const r = record({ attributes: { [key]: "hunter2", plan: "pro" } });
    expect(redactDefault(r)).toEqual([`attributes.${key}`]);
    expect(r.attributes).toEqual({ [key]: REDACTED, plan: "pro" });
  });

  it.each(["businessName", "className", "addressNote", "author", "monkey", "passport", "user_ssn_last4", "keyId", "session_id"])(
    "leaves the attribute %j alone",
    (key) => {
      const r = record({ attributes: { [key]: "value" } });
      expect(redactDefault(r)).toEqual([]);
      expect(r.attributes[key]).toBe("value");
    },
  );

  it("matches a tenant's rules as substrings after removing separators and case, or whole with '='", () => {
    const redact = compileRedactor(mergeRules(DEFAULT_REDACTION_RULES, { keys: ["Date-Of-Birth", "=pin"] }));
    const r = record({ attributes: { dateofbirth: "1970-01-01", "customer.DATE_OF_BIRTH": "1970-01-01", PIN: "1234", shipping: "express" } });
    expect(redact(r)).toEqual(["attributes.dateofbirth", "attributes.customer.DATE_OF_BIRTH", "attributes.PIN"]);
    expect(r.attributes.shipping).toBe("express");
  });

  it("masks an empty value too: that a password was empty is itself sensitive", () => {
    const r = record({ attributes: { password: "" } });
    expect(redactDefault(r)).toEqual(["attributes.password"]);
    expect(r.attributes.password).toBe(REDACTED);
  });

  it("refuses a rule without letters or digits, which would mask every key", () => {
    expect(() => compileRedactor({ keys: ["--"], detectors: DEFAULT_REDACTION_RULES.detectors })).toThrow(
      'redaction key "--" has no letters or digits; it would mask every key',
    );
    expect(() => compileRedactor({ keys: ["="], detectors: DEFAULT_REDACTION_RULES.detectors })).toThrow("has no letters or digits");
  });
});

describe("redaction inside before/after", () => {
  it("masks members by key at any depth, inside arrays, reporting dotted paths with indexes", () => {
    const r = record({
      before: JSON.stringify({ user: { name: "Ann", password: "old" }, status: "active" }),
      after: JSON.stringify({
        user: { name: "Ann", password: "new", profile: { apiKey: "k-1", theme: "dark" } },
        cards: [{ number: "4111 1111 1111 1111", holder: "Ann" }, { number: "paid with 5500-0000-0000-0004", cvv: 123 }],
        status: "active",
      }),
    });
    expect(redactDefault(r)).toEqual([
      "before.user.password",
      "after.user.password",
      "after.user.profile.apiKey",
      "after.cards.0.number",
      "after.cards.1.number",
      "after.cards.1.cvv",
    ]);
    expect(json(r.before)).toEqual({ user: { name: "Ann", password: REDACTED }, status: "active" });
    expect(json(r.after)).toEqual({
      user: { name: "Ann", password: REDACTED, profile: { apiKey: REDACTED, theme: "dark" } },
      cards: [{ number: "[REDACTED:card]", holder: "Ann" }, { number: "paid with [REDACTED:card]", cvv: REDACTED }],
      status: "active",
    });
  });

  it("replaces a masked member's value whatever its type", () => {
    const r = record({
      after: JSON.stringify({ token: 42, secret: { a: 1 }, credentials: ["x", "y"], password: null, cookie: true, apiKey: "" }),
    });
    expect(redactDefault(r)).toEqual(["after.token", "after.secret", "after.credentials", "after.password", "after.cookie", "after.apiKey"]);
    expect(json(r.after)).toEqual({ token: REDACTED, secret: REDACTED, credentials: REDACTED, password: REDACTED, cookie: REDACTED, apiKey: REDACTED });
  });

  it("runs detectors over strings in arrays of arrays, but not over numbers or keys", () => {
    const r = record({ after: JSON.stringify({ notes: [["ok", "Bearer abcdef123456"], 4111111111111111], "4111111111111111": "x" }) });
    expect(redactDefault(r)).toEqual(["after.notes.0.1"]);
    expect(json(r.after)).toEqual({ notes: [["ok", "Bearer [REDACTED]"], 4111111111111111], "4111111111111111": "x" });
  });

  it("keeps the exact JSON text, whitespace and all, when nothing matches", () => {
    const before = '{ "status": "active",  "amount": 1.50, "id": 4111111111111112 }';
    const r = record({ before, after: '{"status":"closed"}' });
    expect(redactDefault(r)).toEqual([]);
    expect(r.before).toBe(before);
    expect(r.after).toBe('{"status":"closed"}');
  });

  it("keeps member order when it re-serializes", () => {
    const r = record({ after: '{"z":1,"password":"x","a":2}' });
    redactDefault(r);
    expect(r.after).toBe('{"z":1,"password":"[REDACTED]","a":2}');
  });

  it("masks a member named __proto__ as a plain member", () => {
    const r = record({ after: '{"__proto__":{"password":"x"},"note":"Bearer abcdef123456"}' });
    expect(redactDefault(r)).toEqual(["after.__proto__.password", "after.note"]);
    expect(r.after).toBe('{"__proto__":{"password":"[REDACTED]"},"note":"Bearer [REDACTED]"}');
  });

  it("leaves an absent state absent", () => {
    const r = record({ before: "", after: "" });
    expect(redactDefault(r)).toEqual([]);
    expect(r.before).toBe("");
    expect(r.after).toBe("");
  });
});

describe("card numbers", () => {
  it.each([
    ["4111 1111 1111 1111", "[REDACTED:card]"],
    ["4111111111111111", "[REDACTED:card]"],
    ["5500-0000-0000-0004", "[REDACTED:card]"],
    ["378282246310005", "[REDACTED:card]"],
    ["3782 822463 10005", "[REDACTED:card]"],
    ["4222222222222", "[REDACTED:card]"],
    ["4000 0000 0000 0000 006", "[REDACTED:card]"],
    ["paid with 4111 1111 1111 1111.", "paid with [REDACTED:card]."],
    ["card:4111111111111111,exp 12/27", "card:[REDACTED:card],exp 12/27"],
    ["cards 4111111111111111 and 5500 0000 0000 0004", "cards [REDACTED:card] and [REDACTED:card]"],
    ["card_4111111111111111", "card_[REDACTED:card]"],
  ])("masks %j", (text, expected) => {
    expect(scrubbed(text)).toBe(expected);
  });

  it.each([
    ["Luhn-invalid", "4111 1111 1111 1112"],
    ["Luhn-invalid", "1234-5678-9012-3456"],
    ["a millisecond timestamp", "at 1700000000000"],
    ["an order id of 16 digits failing Luhn", "order 4111111111111113 shipped"],
    ["a phone number", "call +49 170 1234567 or +1 415-555-0132"],
    ["a Luhn-valid phone number", "call +49170123456786"],
    ["a date and time", "2024-01-02 10:11:12 and 2024-01-02 1234"],
    ["too few digits", "4111 1111 1111"],
    ["a card inside a longer digit run", "id 994111111111111111199"],
    ["a card plus one digit", "41111111111111111"],
    ["a card glued to letters (an id)", "ORD4111111111111111 4111111111111111X"],
    ["digits inside UUIDs", "019b1d2e-4111-7111-8111-111111111111 41111111-1111-4111-9111-111111111111"],
    ["the fraction of a decimal", "score 0.40000000000000006 and 4000000000000000006.5"],
    ["a list of small numbers", "scores 20 30 40 50 60 70 11, total 281"],
    ["an issuer prefix no card has", "9111 1111 1111 1110 and 1111 1111 1111 1117"],
  ])("leaves %s alone: %j", (_, text) => {
    expect(scrubbed(text)).toBe(text);
  });

  it("finds the card in a run of groups that is longer than a card", () => {
    expect(scrubbed("4111 1111 1111 1111 2024")).toBe("[REDACTED:card] 2024");
    expect(scrubbed("ref 12345 4111111111111111")).toBe("ref 12345 [REDACTED:card]");
    expect(scrubbed("qty 1 4111 1111 1111 1111")).toBe("qty 1 [REDACTED:card]");
  });

  it("is off when the rules say so", () => {
    const redact = compileRedactor({ keys: [], detectors: { cardNumbers: false, bearerTokens: true, emails: false } });
    expect(scrubbed("4111 1111 1111 1111", redact)).toBe("4111 1111 1111 1111");
  });
});

describe("bearer tokens and JWTs", () => {
  const jwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

  it.each([
    ["Authorization: Bearer abc123.def-456_ghi~", "Authorization: Bearer [REDACTED]"],
    ["authorization: bearer abcdef12", "authorization: Bearer [REDACTED]"],
    ["BEARER dGhpcyBpcyBhIHRva2Vu== sent", "Bearer [REDACTED] sent"],
    ["header was Bearer AbCdEfGhIjKlMnOpQrStUv", "header was Bearer [REDACTED]"],
    [`Bearer ${jwt}`, "Bearer [REDACTED]"],
    [`token=${jwt}&x=1`, "token=[REDACTED:jwt]&x=1"],
    [`got ${jwt}`, "got [REDACTED:jwt]"],
    ["unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. end", "unsigned [REDACTED:jwt] end"],
  ])("masks %j", (text, expected) => {
    expect(scrubbed(text)).toBe(expected);
  });

  it.each(["the bearer token expired", "Bearer authentication failed", "bearer abc", "Bearer", "eyJ alone", "key eyJhbGciOiJIUzI1NiJ9 only"])(
    "leaves prose and fragments alone: %j",
    (text) => {
      expect(scrubbed(text)).toBe(text);
    },
  );
});

describe("e-mail addresses", () => {
  it("are kept by default: who did what is not a secret", () => {
    expect(scrubbed("invited ann@example.com")).toBe("invited ann@example.com");
  });

  it.each([
    ["invited ann@example.com", "invited [REDACTED:email]"],
    ["Ann <ann.lee+audit@mail.example.co.uk>, bob@x.io.", "Ann <[REDACTED:email]>, [REDACTED:email]."],
  ])("are masked when switched on: %j", (text, expected) => {
    expect(scrubbed(text, withEmails)).toBe(expected);
  });

  it.each(["ping @alice", "user@localhost", "a@b", "@@"])("leaves %j alone", (text) => {
    expect(scrubbed(text, withEmails)).toBe(text);
  });

  it("are masked in attribute values and before/after strings", () => {
    const r = record({ attributes: { invitee: "ann@example.com" }, after: JSON.stringify({ members: ["bob@example.com"] }) });
    expect(withEmails(r)).toEqual(["attributes.invitee", "after.members.0"]);
    expect(r.attributes.invitee).toBe("[REDACTED:email]");
    expect(json(r.after)).toEqual({ members: ["[REDACTED:email]"] });
  });
});

describe("which fields are scanned", () => {
  it("leaves identifiers alone: search and correlation rely on them", () => {
    const card = "4111111111111111";
    const r = record({
      id: `evt-${card}`,
      actorId: "ann@example.com",
      actorName: `Bearer ${card}x`,
      actorSessionId: card,
      actorUserAgent: `Bearer ${card}`,
      resourceId: card,
      resourceName: card,
      source: card,
      requestId: card,
    });
    const copy = structuredClone(r);
    expect(withEmails(r)).toEqual([]);
    expect(r).toEqual(copy);
  });

  it("reports each path once, in the order message, attributes, before, after", () => {
    const r = record({
      message: "Bearer abcdef123456 paid with 4111 1111 1111 1111",
      attributes: { zeta: "4111111111111111", password: "x", alpha: "ok", card: "5500 0000 0000 0004 and 4111111111111111" },
      before: JSON.stringify({ password: "a", note: "4111111111111111 4111111111111111" }),
      after: JSON.stringify({ password: "b" }),
    });
    expect(redactDefault(r)).toEqual([
      "message",
      "attributes.zeta",
      "attributes.password",
      "attributes.card",
      "before.password",
      "before.note",
      "after.password",
    ]);
    expect(r.message).toBe("Bearer [REDACTED] paid with [REDACTED:card]");
    expect(r.attributes).toEqual({ zeta: "[REDACTED:card]", password: REDACTED, alpha: "ok", card: "[REDACTED:card] and [REDACTED:card]" });
  });
});

describe("an event with nothing to mask", () => {
  it("is left exactly as it was", () => {
    const before = '{"status": "active", "seats": 12, "tags": ["eu", "trial"]}';
    const r = record({
      message: "order 12345 shipped to customer 42 on 2026-01-15 at 10:11:12",
      attributes: { amount: "123.45", region: "eu", ts: "1700000000000" },
      before,
      after: '{"status":"suspended"}',
    });
    const attributes = r.attributes;
    const copy = structuredClone(r);
    expect(withEmails(r)).toEqual([]);
    expect(r).toEqual(copy);
    expect(r.before).toBe(before);
    expect(r.attributes).toBe(attributes);
  });

  it("is left alone by rules with no keys and no detectors", () => {
    const redact = compileRedactor({ keys: [], detectors: { cardNumbers: false, bearerTokens: false, emails: false } });
    const r = record({ message: "Bearer abcdef123456 4111111111111111", attributes: { password: "x" } });
    const copy = structuredClone(r);
    expect(redact(r)).toEqual([]);
    expect(r).toEqual(copy);
  });
});

describe("idempotence", () => {
  it("changes nothing on a second pass", () => {
    const r = record({
      message: "Bearer abcdef123456, eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. ann@example.com 4111 1111 1111 1111",
      attributes: { api_key: "k", note: "5500-0000-0000-0004" },
      before: JSON.stringify({ password: { old: true }, list: [{ token: 1 }] }),
      after: JSON.stringify({ password: "new", note: "mail bob@example.com" }),
    });
    expect(withEmails(r)).toHaveLength(7);
    const once = structuredClone(r);
    expect(withEmails(r)).toEqual([]);
    expect(r).toEqual(once);
    expect(r.message).toBe("Bearer [REDACTED], [REDACTED:jwt] [REDACTED:email] [REDACTED:card]");
  });

  it("does not report a value that is already [REDACTED]", () => {
    const r = record({ attributes: { password: REDACTED }, after: '{"secret":"[REDACTED]"}' });
    expect(redactDefault(r)).toEqual([]);
    expect(r.after).toBe('{"secret":"[REDACTED]"}');
  });
});

describe("mergeRules", () => {
  const global: RedactionRules = { keys: ["password"], detectors: { cardNumbers: true, bearerTokens: true, emails: false } };

  it("adds a tenant's keys to the global ones, once each", () => {
    expect(mergeRules(global, { keys: ["iban", "password"] }).keys).toEqual(["password", "iban"]);
  });

  it("lets a tenant switch detectors on and off, leaving the rest as the global rules say", () => {
    expect(mergeRules(global, { detectors: { emails: true, cardNumbers: false } }).detectors).toEqual({
      cardNumbers: false,
      bearerTokens: true,
      emails: true,
    });
  });

  it("ignores a detector a tenant left undefined", () => {
    expect(mergeRules(global, { detectors: { emails: undefined } }).detectors).toEqual(global.detectors);
  });

  it("returns the global rules when the tenant has none, and never changes them", () => {
    const copy = structuredClone(global);
    expect(mergeRules(global)).toBe(global);
    mergeRules(global, { keys: ["iban"], detectors: { bearerTokens: false } });
    expect(global).toEqual(copy);
  });

  it("merged rules mask what either side asks for", () => {
    const redact = compileRedactor(mergeRules(DEFAULT_REDACTION_RULES, { keys: ["iban"], detectors: { bearerTokens: false } }));
    const r = record({ message: "Bearer abcdef123456", attributes: { iban: "DE89370400440532013000", password: "x" } });
    expect(redact(r)).toEqual(["attributes.iban", "attributes.password"]);
    expect(r.message).toBe("Bearer abcdef123456");
  });

  it("the defaults are frozen, so no caller can weaken them for everyone", () => {
    expect(Object.isFrozen(DEFAULT_REDACTION_RULES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_REDACTION_RULES.keys)).toBe(true);
    expect(Object.isFrozen(DEFAULT_REDACTION_RULES.detectors)).toBe(true);
  });
});

describe("hostile input", () => {
  it("stays linear on long runs that almost match", () => {
    const redact = withEmails;
    const inputs = [
      `${"a".repeat(200_000)}@`,
      `${"a.".repeat(100_000)}@x`,
      "1234 ".repeat(40_000),
      "1 ".repeat(100_000),
      `${"eyJabcdefgh.".repeat(20_000)}`,
      `${"bearer ".repeat(30_000)}`,
    ];
    const t0 = performance.now();
    for (const message of inputs) redact(record({ message }));
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
