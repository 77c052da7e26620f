import { Outcome, Severity, type EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import type { TenantScope } from "../auth/tenant-scope.ts";
import { invalidArgument } from "../errors.ts";
import { outcomeName } from "../store/event-row.ts";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { nowMicros, storableMicros, TIME_RANGE } from "../time.ts";
import { isLookup, querySql, timeCeilingUs, timeFloorUs } from "./query-compile.ts";
import { TIME_LEAD_OVER_RECEIPT_US } from "../store/receipt-lead.ts";
import { attributeEqualsSql, textTermSql } from "./text-term.ts";
import { parseQuery } from "./query-language.ts";

/**
 * A WHERE clause and its query parameters. SQL text here is built only from
 * constants and parameter names this module invents (`p0`, `p1`, ...); every
 * value the caller supplied travels as a ClickHouse query parameter.
 */
export interface SqlWhere {
  sql: string;
  params: Record<string, unknown>;
}

const MAX_VALUES = 100;
const MAX_VALUE_BYTES = 256;
const MAX_TEXT_BYTES = 1024;
const MAX_ATTRIBUTES = 20;

export class Conditions {
  readonly parts: string[] = [];
  readonly params: Record<string, unknown> = {};
  /** The earliest `time` the filter lets through, if it implies one. */
  timeFloorUs: number | undefined;
  /** The filter's end_time or the query's `until:` (times before it pass), if set. */
  timeCeilingUs: number | undefined;
  /** The filter names an identifier (an actor, a resource, a request, an attribute value): few matches, likely spread over time. */
  lookup = false;
  #next = 0;

  /** Adds a parameter and returns its placeholder, e.g. `{p3:String}`. */
  param(type: string, value: unknown): string {
    const name = `p${this.#next++}`;
    this.params[name] = value;
    return `{${name}:${type}}`;
  }

  add(sql: string): void {
    this.parts.push(sql);
  }

  build(): SqlWhere {
    return { sql: this.parts.length > 0 ? this.parts.join(" AND ") : "1", params: this.params };
  }
}

/** A single value a read looks up (an event id, a request or session id), held to the filters' limit. */
export function checkedValue(name: string, value: string): string {
  if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw invalidArgument(`${name} is longer than ${MAX_VALUE_BYTES} bytes; no stored value is`);
  return value;
}

function checkValues(field: string, values: string[]): string[] {
  if (values.length > MAX_VALUES) throw invalidArgument(`filter.${field} has ${values.length} values; the limit is ${MAX_VALUES}`);
  for (const v of values) {
    if (Buffer.byteLength(v) > MAX_VALUE_BYTES) {
      throw invalidArgument(`a value in filter.${field} is longer than ${MAX_VALUE_BYTES} bytes`);
    }
  }
  return values;
}

/**
 * The tenant predicate, the first condition of every read. The only function
 * that turns a TenantScope into SQL.
 */
function scopeCondition(where: Conditions, scope: TenantScope): void {
  if (scope.kind === "all") return;
  where.add(`tenant_id = ${where.param("String", scope.tenant)}`);
  if (scope.actorId !== undefined) where.add(`actor_id = ${where.param("String", scope.actorId)}`);
}

export interface FilterOptions {
  /** The table read: `events`, or the hourly rollup, which has no `received_at`. */
  table?: "events" | "events_hourly";
  /**
   * The "now" the query language's relative times (`since:24h`) count back
   * from. A read of several steps (the pages of one search, a tail's replay)
   * passes the same one to each, so its bounds do not move between them.
   */
  nowUs?: number;
}

/**
 * Conditions on `events` (or on the hourly rollup) from the caller's scope
 * and an EventFilter; callers may add their own (paging) before `build()`.
 */
export function filterConditions(scope: TenantScope, filter: EventFilter | undefined, options: FilterOptions = {}): Conditions {
  const { table = "events", nowUs = nowMicros() } = options;
  const where = new Conditions();
  scopeCondition(where, scope);
  where.lookup = scope.kind === "tenant" && scope.actorId !== undefined;
  if (!filter) return where;

  const bound = (field: string, ts: Timestamp | undefined) => {
    if (!ts) return undefined;
    const us = storableMicros(ts);
    if (us === undefined) throw invalidArgument(`filter.${field} must be a valid time ${TIME_RANGE}`);
    return us;
  };
  const start = bound("start_time", filter.startTime);
  const end = bound("end_time", filter.endTime);
  if (start !== undefined && end !== undefined && start >= end) {
    throw invalidArgument("filter.start_time must be before filter.end_time");
  }
  if (start !== undefined) where.add(`time >= fromUnixTimestamp64Micro(${where.param("Int64", start)}, 'UTC')`);
  if (end !== undefined) where.add(`time < fromUnixTimestamp64Micro(${where.param("Int64", end)}, 'UTC')`);

  const inList = (column: string, field: string, values: string[]) => {
    if (values.length > 0) where.add(`${column} IN ${where.param("Array(String)", checkValues(field, values))}`);
  };
  inList("type", "types", filter.types);
  inList("action", "actions", filter.actions.map((a) => a.toUpperCase()));
  inList("actor_id", "actor_ids", filter.actorIds);
  inList("resource_id", "resource_ids", filter.resourceIds);
  inList("source", "sources", filter.sources);

  if (filter.outcomes.length > 0) {
    const names = filter.outcomes.map((o) => {
      if (!(o in Outcome)) throw invalidArgument(`filter.outcomes has unknown value ${o}`);
      return outcomeName(o);
    });
    where.add(`outcome IN ${where.param("Array(String)", names)}`);
  }
  if (filter.minSeverity !== Severity.UNSPECIFIED) {
    if (!(filter.minSeverity in Severity)) throw invalidArgument(`filter.min_severity has unknown value ${filter.minSeverity}`);
    where.add(`toInt8(severity) >= ${where.param("Int8", filter.minSeverity)}`);
  }
  if (filter.resourceType) {
    checkValues("resource_type", [filter.resourceType]);
    where.add(`resource_type = ${where.param("String", filter.resourceType)}`);
  }
  if (filter.requestId) {
    checkValues("request_id", [filter.requestId]);
    where.add(`request_id = ${where.param("String", filter.requestId)}`);
  }
  const attributes = Object.entries(filter.attributes);
  if (attributes.length > MAX_ATTRIBUTES) {
    throw invalidArgument(`filter.attributes has ${attributes.length} entries; the limit is ${MAX_ATTRIBUTES}`);
  }
  for (const [key, value] of attributes) {
    checkValues("attributes", [key, value]);
    where.add(attributeEqualsSql(key, value, where));
  }
  if (filter.text) {
    if (Buffer.byteLength(filter.text) > MAX_TEXT_BYTES) {
      throw invalidArgument(`filter.text is longer than ${MAX_TEXT_BYTES} bytes`);
    }
    where.add(textTermSql(filter.text, where));
  }
  let floorUs = start;
  let ceilingUs = end;
  where.lookup ||= filter.actorIds.length + filter.resourceIds.length + attributes.length > 0 || filter.requestId !== "";
  if (filter.query) {
    const query = parseQuery(filter.query, nowUs);
    where.add(querySql(query, where));
    const queryFloor = timeFloorUs(query);
    if (queryFloor !== undefined) floorUs = Math.max(floorUs ?? queryFloor, queryFloor);
    const queryCeiling = timeCeilingUs(query);
    if (queryCeiling !== undefined) ceilingUs = Math.min(ceilingUs ?? queryCeiling, queryCeiling);
    where.lookup ||= isLookup(query);
  }
  if (floorUs !== undefined && table === "events") {
    // Implied by the time bound (src/store/receipt-lead.ts); it lets the engine
    // skip the partitions (weeks of received_at) that cannot hold a match.
    where.add(`received_at >= fromUnixTimestamp64Micro(${where.param("Int64", floorUs - TIME_LEAD_OVER_RECEIPT_US)}, 'UTC')`);
  }
  where.timeFloorUs = floorUs;
  where.timeCeilingUs = ceilingUs;
  return where;
}
