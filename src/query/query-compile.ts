import type { EventRecord } from "../store/event-row.ts";
import type { Conditions } from "./filter-sql.ts";
import { attributeEqualsSql, textTermPredicate, textTermSql } from "./text-term.ts";
import type { Comparison, QueryNode, StringColumn } from "./query-language.ts";

/**
 * A parsed query as a SQL boolean expression. The SQL text comes from this
 * module's constants and the column names of the grammar; every value the
 * query holds becomes a query parameter of `where`.
 */
export function querySql(node: QueryNode, where: Conditions): string {
  switch (node.kind) {
    case "and":
      return `(${node.items.map((n) => querySql(n, where)).join(" AND ")})`;
    case "or":
      return `(${node.items.map((n) => querySql(n, where)).join(" OR ")})`;
    case "not":
      return `(NOT ${querySql(node.item, where)})`;
    case "equals": {
      const value = where.param("String", node.value);
      return node.prefix ? `startsWith(${node.column}, ${value})` : `${node.column} = ${value}`;
    }
    case "outcome":
      return `toInt8(outcome) = ${where.param("Int8", node.value)}`;
    case "severity":
      return `toInt8(severity) ${node.op} ${where.param("Int8", node.value)}`;
    case "time":
      return `time ${node.op} fromUnixTimestamp64Micro(${where.param("Int64", node.us)}, 'UTC')`;
    case "attribute": {
      if (node.op === "=" && !node.prefix) return attributeEqualsSql(node.key, node.value, where);
      const key = where.param("String", node.key);
      // The number as its decimal text: chDB refuses to bind a JS number past 2^53 (the parser has checked it is one).
      const value = where.param(node.op === "=" ? "String" : "Float64", node.value);
      // Past the line above, "=" is a prefix (attr.key:abc*).
      const test = node.op === "=" ? `startsWith(attributes[${key}], ${value})` : `toFloat64OrNull(attributes[${key}]) ${node.op} ${value}`;
      // mapContains: a missing attribute is not an empty one.
      return `(mapContains(attributes, ${key}) AND ${test})`;
    }
    case "text":
      return textTermSql(node.value, where);
  }
}

/**
 * The earliest `time` any event matching the query can have, if the query
 * implies one (`since:` at its top level, or in every branch of an OR);
 * undefined when it does not (under NOT, or only in some branches).
 */
export const timeFloorUs = (node: QueryNode): number | undefined => timeBoundUs(node, ">=");

/** The (exclusive) latest `time` a match can have, from `until:`, as `timeFloorUs` from `since:`. */
export const timeCeilingUs = (node: QueryNode): number | undefined => timeBoundUs(node, "<");

function timeBoundUs(node: QueryNode, op: ">=" | "<"): number | undefined {
  // Of the bounds all matches must meet, the tightest; of alternatives, the loosest.
  const tightest = op === ">=" ? Math.max : Math.min;
  const loosest = op === ">=" ? Math.min : Math.max;
  switch (node.kind) {
    case "time":
      return node.op === op ? node.us : undefined;
    case "and": {
      const bounds = node.items.map((item) => timeBoundUs(item, op)).filter((us) => us !== undefined);
      return bounds.length > 0 ? tightest(...bounds) : undefined;
    }
    case "or": {
      const bounds = node.items.map((item) => timeBoundUs(item, op));
      return bounds.every((us) => us !== undefined) ? loosest(...bounds) : undefined;
    }
    default:
      return undefined;
  }
}

const LOOKUP_COLUMNS: ReadonlySet<StringColumn> = new Set(["actor_id", "actor_session_id", "resource_id", "request_id", "id"]);

/**
 * Whether every match must equal one identifier (`actor:`, `session:`,
 * `resource:`, `request:`, `id:`, `attr.k:v`): such a query likely matches
 * few events, spread over time.
 */
export function isLookup(node: QueryNode): boolean {
  switch (node.kind) {
    case "equals":
      return !node.prefix && node.value !== "" && LOOKUP_COLUMNS.has(node.column);
    case "attribute":
      return node.op === "=" && !node.prefix && node.value !== "";
    case "and":
      return node.items.some(isLookup);
    case "or":
      return node.items.every(isLookup);
    default:
      return false;
  }
}

const COLUMN_VALUES: Record<StringColumn, (r: EventRecord) => string> = {
  type: (r) => r.type,
  action: (r) => r.action,
  actor_id: (r) => r.actorId,
  actor_type: (r) => r.actorType,
  actor_session_id: (r) => r.actorSessionId,
  resource_id: (r) => r.resourceId,
  resource_type: (r) => r.resourceType,
  source: (r) => r.source,
  request_id: (r) => r.requestId,
  id: (r) => r.id,
};

function compare(a: number, op: Comparison, b: number): boolean {
  switch (op) {
    case "=":
      return a === b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
  }
}

/** Like ClickHouse's toFloat64OrNull for the decimal numbers attributes hold; null otherwise. */
const numberOrNull = (text: string) => (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : null);

/** The same query as a predicate on events in memory (the live tail); a test holds the two equal. */
export function queryPredicate(node: QueryNode): (r: EventRecord) => boolean {
  switch (node.kind) {
    case "and": {
      const items = node.items.map(queryPredicate);
      return (r) => items.every((p) => p(r));
    }
    case "or": {
      const items = node.items.map(queryPredicate);
      return (r) => items.some((p) => p(r));
    }
    case "not": {
      const item = queryPredicate(node.item);
      return (r) => !item(r);
    }
    case "equals": {
      const get = COLUMN_VALUES[node.column];
      const value = node.value;
      return node.prefix ? (r) => get(r).startsWith(value) : (r) => get(r) === value;
    }
    case "outcome":
      return (r) => r.outcome === node.value;
    case "severity":
      return (r) => compare(r.severity, node.op, node.value);
    case "time":
      return node.op === ">=" ? (r) => r.timeUs >= node.us : (r) => r.timeUs < node.us;
    case "attribute": {
      const { key, op, value, prefix } = node;
      const bound = Number(value);
      return (r) => {
        if (!Object.hasOwn(r.attributes, key)) return false;
        const v = r.attributes[key];
        if (op !== "=") {
          const n = numberOrNull(v);
          return n !== null && compare(n, op, bound);
        }
        return prefix ? v.startsWith(value) : v === value;
      };
    }
    case "text":
      return textTermPredicate(node.value);
  }
}
