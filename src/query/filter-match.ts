import { Severity, type EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import type { TenantScope } from "../auth/tenant-scope.ts";
import type { EventRecord } from "../store/event-row.ts";
import { microsFromTimestamp, nowMicros } from "../time.ts";
import { queryPredicate } from "./query-compile.ts";
import { parseQuery } from "./query-language.ts";
import { filterConditions } from "./filter-sql.ts";
import { textTermPredicate } from "./text-term.ts";

export type RecordPredicate = (record: EventRecord) => boolean;

/**
 * The EventFilter as a predicate on events in memory, for the live tail: the
 * same semantics as `filterConditions` gives them in SQL (a test holds the two
 * together). Invalid filters are refused by running them through
 * `filterConditions` first, so both report the same errors.
 */
export function matchFilter(scope: TenantScope, filter: EventFilter | undefined, nowUs = nowMicros()): RecordPredicate {
  filterConditions(scope, filter, { nowUs });
  const tests: RecordPredicate[] = [];
  if (scope.kind === "tenant") {
    const { tenant, actorId } = scope;
    tests.push((r) => r.tenantId === tenant);
    if (actorId !== undefined) tests.push((r) => r.actorId === actorId);
  }
  if (filter) {
    if (filter.startTime) {
      const start = microsFromTimestamp(filter.startTime);
      tests.push((r) => r.timeUs >= start);
    }
    if (filter.endTime) {
      const end = microsFromTimestamp(filter.endTime);
      tests.push((r) => r.timeUs < end);
    }
    const oneOf = (values: string[], pick: (r: EventRecord) => string) => {
      if (values.length === 0) return;
      const set = new Set(values);
      tests.push((r) => set.has(pick(r)));
    };
    oneOf(filter.types, (r) => r.type);
    oneOf(filter.actions.map((a) => a.toUpperCase()), (r) => r.action);
    oneOf(filter.actorIds, (r) => r.actorId);
    oneOf(filter.resourceIds, (r) => r.resourceId);
    oneOf(filter.sources, (r) => r.source);
    if (filter.outcomes.length > 0) {
      const outcomes = new Set(filter.outcomes);
      tests.push((r) => outcomes.has(r.outcome));
    }
    if (filter.minSeverity !== Severity.UNSPECIFIED) {
      const min = filter.minSeverity;
      tests.push((r) => r.severity >= min);
    }
    if (filter.resourceType) {
      const type = filter.resourceType;
      tests.push((r) => r.resourceType === type);
    }
    if (filter.requestId) {
      const id = filter.requestId;
      tests.push((r) => r.requestId === id);
    }
    for (const [key, value] of Object.entries(filter.attributes)) {
      tests.push((r) => Object.hasOwn(r.attributes, key) && r.attributes[key] === value);
    }
    if (filter.text) tests.push(textTermPredicate(filter.text));
    if (filter.query) tests.push(queryPredicate(parseQuery(filter.query, nowUs)));
  }
  return (record) => tests.every((test) => test(record));
}
