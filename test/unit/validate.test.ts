import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema, Outcome, Severity, type Event } from "../../gen/auditlog/v1/event_pb.js";
import { loadConfig, type EventLimits } from "../../src/config.ts";
import { validateEvent, type Invalid } from "../../src/ingest/validate.ts";
import type { EventRecord } from "../../src/store/event-row.ts";

const limits: EventLimits = loadConfig({}).ingest.limits;
const NOW_MS = Date.UTC(2026, 0, 15, 12, 0, 0);
const NOW_US = NOW_MS * 1000;
const TENANT = "acme";
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type EventInit = MessageInitShape<typeof EventSchema>;

/** The smallest valid event, plus overrides. */
function event(overrides: EventInit = {}): Event {
  const base: EventInit = { type: "customer.account.created", action: "CREATE", actor: { id: "u-1" } };
  return create(EventSchema, { ...base, ...overrides } as EventInit);
}

function accept(e: Event, l: EventLimits = limits): { record: EventRecord; clientId: boolean } {
  const result = validateEvent(e, TENANT, NOW_US, l);
  if (!result.ok) throw new Error(`expected the event to be accepted, got ${JSON.stringify(result.invalid)}`);
  return { record: result.record, clientId: result.clientId };
}

function rejection(e: Event, l: EventLimits = limits): Invalid {
  const result = validateEvent(e, TENANT, NOW_US, l);
  if (result.ok) throw new Error("expected the event to be rejected, but it was accepted");
  return result.invalid;
}

const at = (ms: number) => timestampFromDate(new Date(ms));

describe("validateEvent: a complete event", () => {
  it("turns every field into the stored record", () => {
    const { record, clientId } = accept(
      event({
        id: "evt-1",
        time: create(TimestampSchema, { seconds: BigInt(NOW_MS / 1000 - 60), nanos: 123_456_789 }),
        utcOffsetMinutes: 60,
        type: "billing.invoice.paid",
        action: "update",
        outcome: Outcome.FAILURE,
        severity: Severity.WARNING,
        actor: { id: "u-7", type: "user", name: "Ann", sessionId: "s-1", ip: "10.0.0.7", userAgent: "curl/8" },
        resource: { type: "invoice", id: "inv-9", name: "Invoice 9" },
        source: "billing-api",
        requestId: "req-3",
        message: "paid",
        attributes: { plan: "pro" },
        before: { status: "open" },
        after: { status: "paid", amount: 12.5 },
      }),
    );
    expect(clientId).toBe(true);
    expect(record).toEqual({
      tenantId: TENANT,
      id: "evt-1",
      timeUs: NOW_US - 60_000_000 + 123_456,
      utcOffsetMinutes: 60,
      type: "billing.invoice.paid",
      action: "UPDATE",
      outcome: Outcome.FAILURE,
      severity: Severity.WARNING,
      actorId: "u-7",
      actorType: "user",
      actorName: "Ann",
      actorSessionId: "s-1",
      actorIp: "10.0.0.7",
      actorUserAgent: "curl/8",
      resourceType: "invoice",
      resourceId: "inv-9",
      resourceName: "Invoice 9",
      source: "billing-api",
      requestId: "req-3",
      message: "paid",
      attributes: { plan: "pro" },
      before: '{"status":"open"}',
      after: '{"status":"paid","amount":12.5}',
    });
  });

  it("stores absent optional fields as empty strings", () => {
    const { record } = accept(event());
    expect(record).toMatchObject({
      actorType: "",
      actorName: "",
      actorSessionId: "",
      actorIp: "",
      actorUserAgent: "",
      resourceType: "",
      resourceId: "",
      resourceName: "",
      source: "",
      requestId: "",
      message: "",
      attributes: {},
      before: "",
      after: "",
    });
  });

  it("stores the tenant it is given, not the event's tenant_id", () => {
    const { record } = accept(event({ tenantId: "globex" }));
    expect(record.tenantId).toBe(TENANT);
  });
});

describe("validateEvent: type", () => {
  it("rejects a missing type", () => {
    expect(rejection(event({ type: "" }))).toEqual({ field: "type", reason: "type is required" });
  });

  it.each(["a", "customer.account.created", "A-b_9.x-Y", "auth.login_v2"])("accepts the type %j", (type) => {
    expect(accept(event({ type })).record.type).toBe(type);
  });

  it.each(["customer..created", ".leading", "trailing.", "has space", "ünïcode", "a/b", "a.b!"])(
    "rejects the type %j",
    (type) => {
      const invalid = rejection(event({ type }));
      expect(invalid.field).toBe("type");
      expect(invalid.reason).toContain(`type "${type}" must be dotted words`);
    },
  );

  it("rejects a type longer than 128 bytes", () => {
    expect(accept(event({ type: "a".repeat(128) })).record.type).toHaveLength(128);
    expect(rejection(event({ type: "a".repeat(129) }))).toEqual({ field: "type", reason: "type is 129 bytes; the limit is 128" });
  });

  it("keeps the type's case", () => {
    expect(accept(event({ type: "Customer.Account" })).record.type).toBe("Customer.Account");
  });
});

describe("validateEvent: action", () => {
  it("rejects a missing action", () => {
    expect(rejection(event({ action: "" }))).toEqual({ field: "action", reason: "action is required" });
  });

  it.each([
    ["create", "CREATE"],
    ["Login", "LOGIN"],
    ["log_in2", "LOG_IN2"],
    ["DELETE", "DELETE"],
  ])("upper-cases the action %j to %j", (action, stored) => {
    expect(accept(event({ action })).record.action).toBe(stored);
  });

  it.each(["1LOGIN", "_LOGIN", "LOG IN", "LOG-IN", "log.in", "LÖSCHEN"])("rejects the action %j", (action) => {
    const invalid = rejection(event({ action }));
    expect(invalid.field).toBe("action");
    expect(invalid.reason).toContain(`action "${action}" must be one word`);
  });

  it("rejects an action longer than 64 bytes", () => {
    expect(accept(event({ action: "A".repeat(64) })).record.action).toHaveLength(64);
    expect(rejection(event({ action: "A".repeat(65) }))).toEqual({ field: "action", reason: "action is 65 bytes; the limit is 64" });
  });
});

describe("validateEvent: actor.id", () => {
  it("rejects an event without an actor", () => {
    expect(rejection(event({ actor: undefined }))).toEqual({ field: "actor.id", reason: "actor.id is required" });
  });

  it("rejects an actor with an empty id", () => {
    expect(rejection(event({ actor: { id: "", name: "Ann" } }))).toEqual({ field: "actor.id", reason: "actor.id is required" });
  });

  it("rejects an actor.id longer than maxFieldBytes", () => {
    expect(accept(event({ actor: { id: "u".repeat(256) } })).record.actorId).toHaveLength(256);
    expect(rejection(event({ actor: { id: "u".repeat(257) } }))).toEqual({
      field: "actor.id",
      reason: "actor.id is 257 bytes; the limit is 256",
    });
  });
});

describe("validateEvent: id", () => {
  it("keeps a client-supplied id and reports it as such", () => {
    const { record, clientId } = accept(event({ id: "a.b_c:d@e/f-G9" }));
    expect(record.id).toBe("a.b_c:d@e/f-G9");
    expect(clientId).toBe(true);
  });

  it.each(["has space", "a#b", "ü", "a?b", "a,b"])("rejects the id %j", (id) => {
    expect(rejection(event({ id }))).toEqual({ field: "id", reason: "id may contain only letters, digits and . _ : @ / -" });
  });

  it("rejects an id longer than 128 bytes", () => {
    expect(accept(event({ id: "x".repeat(128) })).record.id).toHaveLength(128);
    expect(rejection(event({ id: "x".repeat(129) }))).toEqual({ field: "id", reason: "id is 129 bytes; the limit is 128" });
  });

  it("generates a UUIDv7 stamped with the receive time when the id is empty", () => {
    const { record, clientId } = accept(event({ id: "" }));
    expect(clientId).toBe(false);
    expect(record.id).toMatch(UUID_V7);
    const millis = parseInt(record.id.replace(/-/g, "").slice(0, 12), 16);
    expect(millis).toBe(NOW_MS);
  });

  it("generates a different id for each event without one", () => {
    const a = accept(event()).record.id;
    const b = accept(event()).record.id;
    expect(a).not.toBe(b);
  });
});

describe("validateEvent: time", () => {
  it("defaults to the receive time", () => {
    expect(accept(event({ time: undefined })).record.timeUs).toBe(NOW_US);
  });

  it("keeps a time in the past, to the microsecond", () => {
    const ts = create(TimestampSchema, { seconds: 1_000_000_000n, nanos: 999_999_999 });
    expect(accept(event({ time: ts })).record.timeUs).toBe(1_000_000_000_999_999);
  });

  it("accepts the epoch itself", () => {
    expect(accept(event({ time: at(0) })).record.timeUs).toBe(0);
  });

  it("rejects a time before 1970", () => {
    const invalid = rejection(event({ time: at(-1000) }));
    expect(invalid).toEqual({
      field: "time",
      reason: "time must be between 1970-01-01T00:00:00Z and now; check that seconds are not milliseconds",
    });
  });

  it("rejects a time far beyond what can be stored (microseconds sent as seconds) as an event error", () => {
    const ts = create(TimestampSchema, { seconds: 1_700_000_000_000_000n, nanos: 0 });
    expect(rejection(event({ time: ts })).field).toBe("time");
  });

  it("rejects a time one microsecond before 1970", () => {
    const ts = create(TimestampSchema, { seconds: -1n, nanos: 999_999_000 });
    expect(rejection(event({ time: ts })).field).toBe("time");
  });

  it("accepts a time in the future within maxFutureSkewMs", () => {
    const edge = NOW_MS + limits.maxFutureSkewMs;
    expect(accept(event({ time: at(edge) })).record.timeUs).toBe(edge * 1000);
    expect(accept(event({ time: at(NOW_MS + 1000) })).record.timeUs).toBe((NOW_MS + 1000) * 1000);
  });

  it("rejects a time further in the future than maxFutureSkewMs", () => {
    const invalid = rejection(event({ time: at(NOW_MS + limits.maxFutureSkewMs + 1) }));
    expect(invalid.field).toBe("time");
    expect(invalid.reason).toContain("is more than 5 minutes in the future");
    expect(invalid.reason).toContain("2026-01-15T12:05:00.001Z");
  });

  it("follows a configured future skew", () => {
    const strict = { ...limits, maxFutureSkewMs: 1000 };
    expect(accept(event({ time: at(NOW_MS + 1000) }), strict).record.timeUs).toBe((NOW_MS + 1000) * 1000);
    expect(rejection(event({ time: at(NOW_MS + 1001) }), strict).field).toBe("time");
  });

  it.each([-1, 1_000_000_000])("rejects time.nanos %d", (nanos) => {
    const ts = create(TimestampSchema, { seconds: 1_700_000_000n, nanos });
    expect(rejection(event({ time: ts }))).toEqual({ field: "time", reason: "time.nanos must be within 0..999999999" });
  });
});

describe("validateEvent: utc_offset_minutes", () => {
  it.each([0, 60, -300, 1080, -1080])("accepts %d", (utcOffsetMinutes) => {
    expect(accept(event({ utcOffsetMinutes })).record.utcOffsetMinutes).toBe(utcOffsetMinutes);
  });

  it.each([1081, -1081, 100_000])("rejects %d", (utcOffsetMinutes) => {
    expect(rejection(event({ utcOffsetMinutes }))).toEqual({
      field: "utc_offset_minutes",
      reason: "utc_offset_minutes must be within ±1080",
    });
  });
});

describe("validateEvent: outcome and severity", () => {
  it.each([Outcome.UNSPECIFIED, Outcome.SUCCESS, Outcome.FAILURE])("accepts outcome %d", (outcome) => {
    expect(accept(event({ outcome })).record.outcome).toBe(outcome);
  });

  it.each([3, -1, 99])("rejects the unknown outcome %d", (n) => {
    const invalid = rejection(event({ outcome: n as Outcome }));
    expect(invalid.field).toBe("outcome");
    expect(invalid.reason).toBe(`outcome ${n} is not one of OUTCOME_UNSPECIFIED, OUTCOME_SUCCESS, OUTCOME_FAILURE`);
  });

  it("normalizes severity UNSPECIFIED to INFO", () => {
    expect(accept(event({ severity: Severity.UNSPECIFIED })).record.severity).toBe(Severity.INFO);
  });

  it.each([Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL])("keeps severity %d", (severity) => {
    expect(accept(event({ severity })).record.severity).toBe(severity);
  });

  it.each([5, -1])("rejects the unknown severity %d", (n) => {
    const invalid = rejection(event({ severity: n as Severity }));
    expect(invalid.field).toBe("severity");
    expect(invalid.reason).toContain(`severity ${n} is not one of`);
  });
});

describe("validateEvent: actor.ip", () => {
  it.each(["192.0.2.1", "10.0.0.7", "2001:db8::1", "::1", "::ffff:192.0.2.1"])("accepts %j", (ip) => {
    expect(accept(event({ actor: { id: "u-1", ip } })).record.actorIp).toBe(ip);
  });

  it.each(["not-an-ip", "256.1.1.1", "10.0.0.1/24", " 10.0.0.1", "1.2.3", "gggg::1", "example.com"])("rejects %j", (ip) => {
    expect(rejection(event({ actor: { id: "u-1", ip } }))).toEqual({
      field: "actor.ip",
      reason: `actor.ip "${ip}" is not an IPv4 or IPv6 address`,
    });
  });

  it("rejects an ip longer than 64 bytes before parsing it", () => {
    const invalid = rejection(event({ actor: { id: "u-1", ip: "1".repeat(65) } }));
    expect(invalid).toEqual({ field: "actor.ip", reason: "actor.ip is 65 bytes; the limit is 64" });
  });
});

describe("validateEvent: message", () => {
  it("accepts a message of exactly maxMessageBytes", () => {
    expect(accept(event({ message: "m".repeat(limits.maxMessageBytes) })).record.message).toHaveLength(8192);
  });

  it("rejects a message one byte over maxMessageBytes", () => {
    expect(rejection(event({ message: "m".repeat(8193) }))).toEqual({
      field: "message",
      reason: "message is 8193 bytes; the limit is 8192",
    });
  });

  it("counts the message in UTF-8 bytes, not characters", () => {
    const euros = "€".repeat(2731); // 2731 characters, 8193 bytes
    expect(rejection(event({ message: euros }))).toEqual({ field: "message", reason: "message is 8193 bytes; the limit is 8192" });
    expect(accept(event({ message: "€".repeat(2730) })).record.message).toHaveLength(2730);
  });

  it("counts a character outside the BMP as four bytes", () => {
    const l = { ...limits, maxMessageBytes: 7 };
    expect(rejection(event({ message: "😀😀" }), l)).toEqual({ field: "message", reason: "message is 8 bytes; the limit is 7" });
    expect(accept(event({ message: "😀" }), l).record.message).toBe("😀");
  });
});

describe("validateEvent: attributes", () => {
  const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));

  it("accepts maxAttributes attributes", () => {
    expect(Object.keys(accept(event({ attributes: many(64) })).record.attributes)).toHaveLength(64);
  });

  it("rejects more than maxAttributes attributes", () => {
    expect(rejection(event({ attributes: many(65) }))).toEqual({ field: "attributes", reason: "65 attributes; the limit is 64" });
  });

  it.each(["plan", "a_b.c:d-E9", "x"])("accepts the key %j", (key) => {
    expect(accept(event({ attributes: { [key]: "v" } })).record.attributes).toEqual({ [key]: "v" });
  });

  it("rejects an attribute key with a space", () => {
    const invalid = rejection(event({ attributes: { "has space": "v" } }));
    expect(invalid.field).toBe("attributes");
    expect(invalid.reason).toBe('attribute key "has space" must be 1..128 bytes of letters, digits and _ . : -');
  });

  it.each(["", "ключ", "a/b", "a=b", "a\nb"])("rejects the key %j", (key) => {
    const invalid = rejection(event({ attributes: { [key]: "v" } }));
    expect(invalid.field).toBe("attributes");
    expect(invalid.reason).toContain("must be 1..128 bytes of letters, digits and _ . : -");
  });

  it("rejects a key longer than maxAttributeKeyBytes", () => {
    expect(accept(event({ attributes: { ["k".repeat(128)]: "v" } })).record.attributes).toHaveProperty("k".repeat(128));
    const invalid = rejection(event({ attributes: { ["k".repeat(129)]: "v" } }));
    expect(invalid.field).toBe("attributes");
    expect(invalid.reason).toContain(`attribute key "${"k".repeat(64)}" must be 1..128 bytes`);
  });

  it("rejects a value longer than maxAttributeValueBytes, naming its key", () => {
    expect(accept(event({ attributes: { note: "v".repeat(4096) } })).record.attributes.note).toHaveLength(4096);
    expect(rejection(event({ attributes: { note: "v".repeat(4097) } }))).toEqual({
      field: 'attributes["note"]',
      reason: 'attributes["note"] is 4097 bytes; the limit is 4096',
    });
  });

  it("counts attribute values in UTF-8 bytes", () => {
    const invalid = rejection(event({ attributes: { note: "é".repeat(2049) } })); // 2049 characters, 4098 bytes
    expect(invalid).toEqual({ field: 'attributes["note"]', reason: 'attributes["note"] is 4098 bytes; the limit is 4096' });
  });

  it("accepts an empty attribute value", () => {
    expect(accept(event({ attributes: { flag: "" } })).record.attributes).toEqual({ flag: "" });
  });
});

describe("validateEvent: before and after", () => {
  it("stores before and after as JSON text", () => {
    const before = { status: "open", tags: ["a", "b"], nested: { n: 1, ok: true, none: null } };
    const after = { status: "closed" };
    const { record } = accept(event({ before, after }));
    expect(JSON.parse(record.before)).toEqual(before);
    expect(JSON.parse(record.after)).toEqual(after);
  });

  it("stores an empty object as {} rather than as absent", () => {
    expect(accept(event({ before: {} })).record.before).toBe("{}");
  });

  it.each(["before", "after"] as const)("rejects %s larger than maxStateBytes", (field) => {
    const fits = { blob: "x".repeat(limits.maxStateBytes - 11) }; // {"blob":"…"} adds 11 bytes
    expect(accept(event({ [field]: fits })).record[field]).toHaveLength(limits.maxStateBytes);
    const invalid = rejection(event({ [field]: { blob: "x".repeat(limits.maxStateBytes - 10) } }));
    expect(invalid).toEqual({ field, reason: `${field} is 32769 bytes; the limit is 32768` });
  });

  it("counts state in UTF-8 bytes of its JSON text", () => {
    const l = { ...limits, maxStateBytes: 20 };
    // {"k":"éééééé"} is 14 characters but 20 bytes; one more é makes it 22 bytes.
    expect(accept(event({ after: { k: "éééééé" } }), l).record.after).toBe('{"k":"éééééé"}');
    expect(rejection(event({ after: { k: "ééééééé" } }), l)).toEqual({ field: "after", reason: "after is 22 bytes; the limit is 20" });
  });
});

describe("validateEvent: whole-event size", () => {
  it("counts the limit in UTF-8 bytes, so multi-byte text cannot slip past it", () => {
    // 40 values of 4,095 bytes each (1,365 × "€", 3 bytes): each fits, together ~164 KB.
    const attributes = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, "€".repeat(1365)]));
    const invalid = rejection(event({ attributes }));
    expect(invalid.field).toBe("event");
    expect(invalid.reason).toMatch(/^the event is \d+ bytes; the limit is 65536/);
    expect(Number(/is (\d+) bytes/.exec(invalid.reason)![1])).toBeGreaterThan(40 * 4095);
  });

  it("rejects an event whose parts each fit but together exceed maxEventBytes", () => {
    const big = { blob: "x".repeat(30_000) };
    const invalid = rejection(event({ before: big, after: big, message: "m".repeat(8000) }));
    expect(invalid.field).toBe("event");
    expect(invalid.reason).toMatch(/^the event is \d+ bytes; the limit is 65536\. Move bulky content out of before\/after\/attributes$/);
  });

  it("accepts the same parts when maxEventBytes allows them", () => {
    const big = { blob: "x".repeat(30_000) };
    const roomy = { ...limits, maxEventBytes: 128 * 1024 };
    expect(accept(event({ before: big, after: big, message: "m".repeat(8000) }), roomy).record.message).toHaveLength(8000);
  });

  it("counts attributes towards the event size", () => {
    const l = { ...limits, maxEventBytes: 2048 };
    const attributes = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`key${i}`, "v".repeat(300)]));
    expect(rejection(event({ attributes }), l).field).toBe("event");
    expect(accept(event({ attributes: { key0: "v".repeat(300) } }), l).record.attributes.key0).toHaveLength(300);
  });
});

describe("validateEvent: field lengths", () => {
  const cases: [string, EventInit][] = [
    ["actor.type", { actor: { id: "u-1", type: "T" } }],
    ["actor.name", { actor: { id: "u-1", name: "T" } }],
    ["actor.session_id", { actor: { id: "u-1", sessionId: "T" } }],
    ["resource.type", { resource: { type: "T" } }],
    ["resource.id", { resource: { id: "T" } }],
    ["resource.name", { resource: { name: "T" } }],
    ["source", { source: "T" }],
    ["request_id", { requestId: "T" }],
  ];
  /** The init with every "T" replaced by `value`. */
  const withValue = (init: EventInit, value: string): EventInit =>
    JSON.parse(JSON.stringify(init).replace(/"T"/g, JSON.stringify(value))) as EventInit;

  it.each(cases)("accepts %s of exactly maxFieldBytes", (_field, init) => {
    expect(validateEvent(event(withValue(init, "f".repeat(256))), TENANT, NOW_US, limits).ok).toBe(true);
  });

  it.each(cases)("rejects %s longer than maxFieldBytes", (field, init) => {
    expect(rejection(event(withValue(init, "f".repeat(257))))).toEqual({ field, reason: `${field} is 257 bytes; the limit is 256` });
  });

  it.each(cases)("counts %s in UTF-8 bytes", (field, init) => {
    expect(rejection(event(withValue(init, "ж".repeat(129))))).toEqual({ field, reason: `${field} is 258 bytes; the limit is 256` });
  });

  it("follows a configured maxFieldBytes", () => {
    const l = { ...limits, maxFieldBytes: 8 };
    expect(rejection(event({ source: "123456789" }), l)).toEqual({ field: "source", reason: "source is 9 bytes; the limit is 8" });
  });

  it("limits actor.user_agent to 1024 bytes regardless of maxFieldBytes", () => {
    expect(accept(event({ actor: { id: "u-1", userAgent: "a".repeat(1024) } })).record.actorUserAgent).toHaveLength(1024);
    expect(rejection(event({ actor: { id: "u-1", userAgent: "a".repeat(1025) } }))).toEqual({
      field: "actor.user_agent",
      reason: "actor.user_agent is 1025 bytes; the limit is 1024",
    });
  });
});
