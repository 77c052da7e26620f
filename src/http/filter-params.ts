import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { EventFilterSchema, Outcome, Severity, type EventFilter } from "../../gen/auditlog/v1/event_pb.js";
import { invalidArgument } from "../errors.ts";

/**
 * An EventFilter from URL query parameters, for the plain HTTP routes
 * (export download, WebSocket tail). Names are the EventFilter's proto field
 * names in the singular; repeat a parameter for several values (OR), and give
 * attributes as `attr.<key>=<value>`. Unknown parameters are refused, so a
 * typo never silently widens an export.
 */
const REPEATED: Record<string, "types" | "actions" | "actorIds" | "resourceIds" | "sources"> = {
  type: "types",
  action: "actions",
  actor_id: "actorIds",
  resource_id: "resourceIds",
  source: "sources",
};
const SINGLE: Record<string, "resourceType" | "requestId" | "text" | "tenantId" | "query"> = {
  resource_type: "resourceType",
  request_id: "requestId",
  text: "text",
  tenant_id: "tenantId",
  q: "query",
};
const FILTER_PARAMS = [...Object.keys(REPEATED), ...Object.keys(SINGLE), "start_time", "end_time", "outcome", "min_severity", "attr.<key>"];

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/** An RFC 3339 time (e.g. 2026-11-23T10:00:00Z) as a Timestamp, to the nanosecond. */
export function parseRfc3339(name: string, value: string): Timestamp {
  const match = RFC3339.exec(value);
  const ms = match ? Date.parse(`${match[1]}${match[3]}`) : NaN;
  if (!match || Number.isNaN(ms)) {
    throw invalidArgument(`${name} must be an RFC 3339 time such as 2026-11-23T10:00:00Z, got ${JSON.stringify(value)}`);
  }
  const nanos = match[2] ? Number(match[2].padEnd(9, "0")) : 0;
  return create(TimestampSchema, { seconds: BigInt(ms / 1000), nanos });
}

function enumValue<T extends number>(name: string, value: string, values: Record<string, T>, prefix: string): T {
  const key = value.toUpperCase().replace(new RegExp(`^${prefix}`), "");
  const found = values[key];
  if (found === undefined || key === "UNSPECIFIED") {
    throw invalidArgument(`${name} must be one of ${Object.keys(values).filter((k) => k !== "UNSPECIFIED").join(", ")}, got ${JSON.stringify(value)}`);
  }
  return found;
}

const OUTCOMES = { SUCCESS: Outcome.SUCCESS, FAILURE: Outcome.FAILURE } as Record<string, Outcome>;
const SEVERITIES = { INFO: Severity.INFO, WARNING: Severity.WARNING, ERROR: Severity.ERROR, CRITICAL: Severity.CRITICAL } as Record<
  string,
  Severity
>;

/** The filter of a request; `own` are the route's own parameters (e.g. `format`), left to the route. */
export function filterFromParams(params: URLSearchParams, own: readonly string[]): EventFilter {
  const filter = create(EventFilterSchema);
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (own.includes(name)) continue;
    const single = Object.hasOwn(SINGLE, name) || ["start_time", "end_time", "min_severity"].includes(name) || name.startsWith("attr.");
    if (single && seen.has(name)) throw invalidArgument(`${name} may be given once`);
    seen.add(name);
    if (Object.hasOwn(REPEATED, name)) filter[REPEATED[name]].push(value);
    else if (Object.hasOwn(SINGLE, name)) filter[SINGLE[name]] = value;
    else if (name === "start_time") filter.startTime = parseRfc3339(name, value);
    else if (name === "end_time") filter.endTime = parseRfc3339(name, value);
    else if (name === "outcome") filter.outcomes.push(enumValue(name, value, OUTCOMES, "OUTCOME_"));
    else if (name === "min_severity") filter.minSeverity = enumValue(name, value, SEVERITIES, "SEVERITY_");
    else if (name.startsWith("attr.") && name.length > 5) {
      // A plain object cannot hold this key: it would vanish and the filter match everything.
      if (name === "attr.__proto__") throw invalidArgument('"attr.__proto__" is not accepted: no attribute may be named __proto__');
      filter.attributes[name.slice(5)] = value;
    }
    else {
      throw invalidArgument(`unknown query parameter "${name}"; this route takes ${[...own, ...FILTER_PARAMS].join(", ")}`);
    }
  }
  return filter;
}
