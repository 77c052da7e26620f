import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Outcome, Severity, type EventSchema } from "../gen/auditlog/v1/event_pb.js";

/** Deterministic pseudo-random numbers, so every run loads the same data. */
export function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The 20 event types, each with the action and the emitting service it comes
 * with, as in a real stream: an `order.viewed` is a VIEW from `orders`, never a
 * LOGIN from `docs`. (The first generator drew action and source apart from
 * the type, so nearly every event of a tenant-hour was its own row of the
 * hourly rollup: 0.93 rows per event, against 0.13 here, under two per type.)
 * `failure`: the type records something that failed (outcome FAILURE,
 * severity WARNING or ERROR); other types fail now and then.
 */
const TYPES: { type: string; action: string; source: string; failure?: true }[] = [
  { type: "customer.account.created", action: "CREATE", source: "identity" },
  { type: "customer.account.updated", action: "UPDATE", source: "identity" },
  { type: "customer.account.deleted", action: "DELETE", source: "identity" },
  { type: "billing.invoice.created", action: "CREATE", source: "billing-api" },
  { type: "billing.invoice.paid", action: "UPDATE", source: "billing-api" },
  { type: "billing.payment.failed", action: "CREATE", source: "billing-api", failure: true },
  { type: "billing.refund.issued", action: "CREATE", source: "billing-api" },
  { type: "auth.login.succeeded", action: "LOGIN", source: "gateway" },
  { type: "auth.login.failed", action: "LOGIN", source: "gateway", failure: true },
  { type: "auth.mfa.enrolled", action: "UPDATE", source: "identity" },
  { type: "auth.password.changed", action: "UPDATE", source: "identity" },
  { type: "iam.role.granted", action: "GRANT", source: "admin-console" },
  { type: "iam.role.revoked", action: "REVOKE", source: "admin-console" },
  { type: "order.created", action: "CREATE", source: "orders" },
  { type: "order.viewed", action: "VIEW", source: "orders" },
  { type: "order.cancelled", action: "DELETE", source: "orders" },
  { type: "document.shared", action: "UPDATE", source: "docs" },
  { type: "document.downloaded", action: "EXPORT", source: "docs" },
  { type: "api.key.created", action: "CREATE", source: "admin-console" },
  { type: "api.key.revoked", action: "REVOKE", source: "admin-console" },
];
const WORDS = (
  "account invoice payment card declined approved customer order shipment refund password login session token " +
  "role permission granted revoked document shared downloaded export report region europe premium trial upgrade " +
  "downgrade renewal failed succeeded suspicious location device browser mobile desktop api key rotated limit"
).split(" ");

/** One audit event of about 500 bytes: 50 tenants, 20 types, 5–10 attributes, a sentence of real words. */
export function realisticEvent(n: number, tenants = 50): MessageInitShape<typeof EventSchema> {
  const rnd = mulberry32(n);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const attributes: Record<string, string> = {};
  const count = 5 + Math.floor(rnd() * 6);
  for (let i = 0; i < count; i++) attributes[`attr_${i}`] = `${pick(WORDS)}-${Math.floor(rnd() * 1000)}`;
  attributes.amount = String(Math.floor(rnd() * 100_000) / 100);
  const words = Array.from({ length: 8 + Math.floor(rnd() * 8) }, () => pick(WORDS));
  const tenantId = `tenant-${Math.floor(rnd() * tenants)}`;
  const time = timestampFromMs(Date.now() - Math.floor(rnd() * 60_000));
  const kind = pick(TYPES);
  // A failure type always fails; any other fails 2% of the time, and 5% of its
  // successes are warnings (a new device, a limit nearly reached).
  const failed = kind.failure === true || rnd() < 0.02;
  const severityDraw = rnd();
  const severity = failed ? (severityDraw < 0.7 ? Severity.WARNING : Severity.ERROR) : severityDraw < 0.95 ? Severity.INFO : Severity.WARNING;
  return {
    tenantId,
    time,
    utcOffsetMinutes: 60,
    type: kind.type,
    action: kind.action,
    outcome: failed ? Outcome.FAILURE : Outcome.SUCCESS,
    severity,
    actor: { id: `user-${Math.floor(rnd() * 5000)}`, type: "user", name: "Jane Doe", sessionId: `s-${Math.floor(rnd() * 1e6)}`, ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64)" },
    resource: { type: "account", id: `acct-${Math.floor(rnd() * 100_000)}`, name: "Main account" },
    source: kind.source,
    requestId: `req-${Math.floor(n / 3)}`,
    message: words.join(" "),
    attributes,
  };
}
