import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EventSchema, Outcome, Severity } from "../../gen/auditlog/v1/event_pb.js";

const TYPES = ["customer.account.created", "billing.invoice.paid", "auth.login", "order.viewed", "iam.role.granted"];
const ACTIONS = ["CREATE", "UPDATE", "DELETE", "VIEW", "LOGIN"];

/** A realistic event; `n` makes it distinct and deterministic. */
export function sampleEvent(n: number, overrides: MessageInitShape<typeof EventSchema> = {}) {
  return create(EventSchema, {
    id: `evt-${n}`,
    time: timestampFromDate(new Date(Date.UTC(2026, 10, 1) + n * 1000)),
    utcOffsetMinutes: 60,
    type: TYPES[n % TYPES.length],
    action: ACTIONS[n % ACTIONS.length],
    outcome: n % 7 === 0 ? Outcome.FAILURE : Outcome.SUCCESS,
    severity: n % 11 === 0 ? Severity.WARNING : Severity.INFO,
    actor: { id: `user-${n % 13}`, type: "user", name: `User ${n % 13}`, sessionId: `s-${n % 5}`, ip: "10.0.0.7", userAgent: "test/1.0" },
    resource: { type: "account", id: `acct-${n % 17}`, name: `Account ${n % 17}` },
    source: "billing-api",
    requestId: `req-${Math.floor(n / 3)}`,
    message: `Event number ${n} for account ${n % 17}`,
    attributes: { seq: String(n), plan: n % 2 ? "pro" : "free", region: "eu-west-1" },
    ...overrides,
  } as MessageInitShape<typeof EventSchema>);
}

/**
 * Four events that exercise every encoding path of an `Event` (a negative
 * offset, non-ASCII and astral text, a `before` document of every JSON kind,
 * an empty attribute, one without a resource), all with the attribute
 * `suite: "encodings"`: for comparing what the protocols send.
 */
export function encodingSampleEvents() {
  return [0, 1, 2, 3].map((i) =>
    sampleEvent(i, {
      id: `enc-${i}`,
      utcOffsetMinutes: -330,
      message: `héllo ✓ 𝄞 ${i}`,
      before: i % 2 ? { plan: "free", seats: 3, ratio: 0.5, flags: [true, false, null], deep: { a: { b: ["c"] } } } : undefined,
      attributes: { suite: "encodings", i: String(i), empty: "" },
      ...(i === 3 ? { resource: undefined } : {}),
    }),
  );
}
