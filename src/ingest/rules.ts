import type { EventLimits } from "../config.ts";

/**
 * The validation rules of an event, declared once: `validate.ts` enforces
 * them on every protocol, and README's "Event rules" table is this list (a
 * test compares the two). Sizes are UTF-8 bytes.
 */
export const PATTERNS = {
  type: /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
  action: /^[A-Z][A-Z0-9_]*$/,
  id: /^[A-Za-z0-9._:@\/-]+$/,
  attributeKey: /^[A-Za-z0-9_.:-]+$/,
} as const;

export const FIXED_SIZES = {
  typeBytes: 128,
  actionBytes: 64,
  idBytes: 128,
  ipBytes: 64,
  userAgentBytes: 1024,
  utcOffsetMinutes: 18 * 60,
  /** Levels of objects and arrays in before/after. */
  stateDepth: 32,
} as const;

/** Attribute keys the service sets itself (auditlog.redacted); clients may not. */
export const RESERVED_ATTRIBUTE_PREFIX = "auditlog.";

/** The defaults of the configurable limits (`AUDITLOG_MAX_EVENT_BYTES` is the only one in the environment). */
export const DEFAULT_EVENT_LIMITS: EventLimits = {
  maxEventBytes: 64 * 1024,
  maxMessageBytes: 8 * 1024,
  maxAttributes: 64,
  maxAttributeKeyBytes: 128,
  maxAttributeValueBytes: 4 * 1024,
  maxStateBytes: 32 * 1024,
  maxFieldBytes: 256,
  maxFutureSkewMs: 5 * 60 * 1000,
};

const kib = (n: number) => (n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`);

/** The rules as people read them, one row per field. */
export function describeRules(l: EventLimits = DEFAULT_EVENT_LIMITS): { field: string; rule: string }[] {
  const S = FIXED_SIZES;
  return [
    { field: "type", rule: `required; ≤ ${S.typeBytes} bytes; dotted words of letters, digits, \`_\`, \`-\` (\`billing.invoice.paid\`)` },
    { field: "action", rule: `required; ≤ ${S.actionBytes} bytes; one word of letters, digits, \`_\`; stored upper-cased` },
    { field: "actor.id", rule: `required; ≤ ${l.maxFieldBytes} bytes` },
    { field: "id", rule: `optional (the server makes a UUIDv7, marked \`…-7a10-…\`); ≤ ${S.idBytes} bytes of letters, digits and \`. _ : @ / -\`` },
    { field: "time", rule: `optional (now); not before 1970, not more than ${l.maxFutureSkewMs / 60000} minutes ahead of the server clock` },
    { field: "utc_offset_minutes", rule: `within ±${S.utcOffsetMinutes}` },
    { field: "outcome, severity", rule: "a value of the enum" },
    { field: "actor.ip", rule: `optional; an IPv4 or IPv6 address` },
    { field: "actor.user_agent", rule: `≤ ${kib(S.userAgentBytes)}` },
    { field: "message", rule: `≤ ${kib(l.maxMessageBytes)}` },
    {
      field: "attributes",
      rule: `≤ ${l.maxAttributes}; keys 1..${l.maxAttributeKeyBytes} bytes of letters, digits, \`_ . : -\`, not starting with \`${RESERVED_ATTRIBUTE_PREFIX}\`; values ≤ ${kib(l.maxAttributeValueBytes)}`,
    },
    { field: "before, after", rule: `JSON objects, ≤ ${kib(l.maxStateBytes)} each as JSON text, nested ≤ ${S.stateDepth} levels` },
    { field: "other strings", rule: `≤ ${l.maxFieldBytes} bytes (actor, resource, source, request_id)` },
    { field: "the whole event", rule: `≤ ${kib(l.maxEventBytes)} (\`AUDITLOG_MAX_EVENT_BYTES\`)` },
  ];
}
