import { compileRedactor, mergeRules, type RedactionRules, type Redactor } from "../ingest/redact.ts";
import type { EventRecord } from "../store/event-row.ts";
import type { TenantRegistry } from "./registry.ts";

/** Where a redacted event lists what was masked. Clients may not set `auditlog.*` attributes (src/ingest/validate.ts). */
export const REDACTED_ATTRIBUTE = "auditlog.redacted";
const MAX_LIST_CHARS = 2000;

/**
 * Masks an event by its tenant's rules (the global ones plus the tenant's),
 * before it is hashed and stored, and records the masked fields in the event
 * itself, so a reader knows a value is missing rather than never sent.
 */
export function createTenantRedaction(global: RedactionRules, registry: TenantRegistry): (record: EventRecord) => void {
  const globalRedactor = compileRedactor(global);
  // Compiled once per tenant version: rules change rarely, events arrive constantly.
  const compiled = new Map<string, { version: number; redactor: Redactor }>();

  const redactorFor = (tenant: string): Redactor => {
    const record = registry.get(tenant);
    const rules = record?.redaction;
    if (!record || !rules || (rules.keys.length === 0 && rules.cardNumbers === undefined && rules.bearerTokens === undefined && rules.emails === undefined)) {
      return globalRedactor;
    }
    const cached = compiled.get(tenant);
    if (cached?.version === record.updateTimeUs) return cached.redactor;
    const detectors = { cardNumbers: rules.cardNumbers, bearerTokens: rules.bearerTokens, emails: rules.emails };
    const redactor = compileRedactor(mergeRules(global, { keys: rules.keys, detectors }));
    compiled.set(tenant, { version: record.updateTimeUs, redactor });
    return redactor;
  };

  return (record) => {
    const paths = redactorFor(record.tenantId)(record);
    if (paths.length === 0) return;
    const list = paths.join(",");
    // Within an attribute value's limit, however many keys a document had masked.
    const value = list.length <= MAX_LIST_CHARS ? list : `${list.slice(0, MAX_LIST_CHARS).replace(/,[^,]*$/, "")},…`;
    record.attributes = { ...record.attributes, [REDACTED_ATTRIBUTE]: value };
  };
}
