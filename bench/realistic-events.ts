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

const TYPES = [
  "customer.account.created", "customer.account.updated", "customer.account.deleted", "billing.invoice.created",
  "billing.invoice.paid", "billing.payment.failed", "billing.refund.issued", "auth.login.succeeded", "auth.login.failed",
  "auth.mfa.enrolled", "auth.password.changed", "iam.role.granted", "iam.role.revoked", "order.created", "order.viewed",
  "order.cancelled", "document.shared", "document.downloaded", "api.key.created", "api.key.revoked",
];
const ACTIONS = ["CREATE", "UPDATE", "DELETE", "VIEW", "LOGIN", "GRANT", "REVOKE", "EXPORT"];
const SOURCES = ["billing-api", "identity", "orders", "docs", "gateway", "admin-console"];
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
  return {
    tenantId: `tenant-${Math.floor(rnd() * tenants)}`,
    time: timestampFromMs(Date.now() - Math.floor(rnd() * 60_000)),
    utcOffsetMinutes: 60,
    type: pick(TYPES),
    action: pick(ACTIONS),
    outcome: rnd() < 0.9 ? Outcome.SUCCESS : Outcome.FAILURE,
    severity: rnd() < 0.8 ? Severity.INFO : rnd() < 0.7 ? Severity.WARNING : Severity.ERROR,
    actor: { id: `user-${Math.floor(rnd() * 5000)}`, type: "user", name: "Jane Doe", sessionId: `s-${Math.floor(rnd() * 1e6)}`, ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64)" },
    resource: { type: "account", id: `acct-${Math.floor(rnd() * 100_000)}`, name: "Main account" },
    source: pick(SOURCES),
    requestId: `req-${Math.floor(n / 3)}`,
    message: words.join(" "),
    attributes,
  };
}
