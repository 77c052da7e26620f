/**
 * The SELECTs behind exports. ClickHouse writes every byte of the file itself
 * (NDJSON lines, CSV, Parquet); Node only passes the bytes on. All SQL text
 * here is constant: column names and JSON keys are ours, and the attribute
 * keys of a CSV export travel as query parameters.
 */
import type { Conditions } from "./filter-sql.ts";

export type ExportFormatName = "ndjson" | "csv" | "parquet";

export const EXPORT_MEDIA: Record<ExportFormatName, { contentType: string; extension: string; clickhouseFormat: string }> = {
  ndjson: { contentType: "application/x-ndjson", extension: "ndjson", clickhouseFormat: "TSVRaw" },
  csv: { contentType: "text/csv; charset=utf-8; header=present", extension: "csv", clickhouseFormat: "CSV" },
  parquet: { contentType: "application/vnd.apache.parquet", extension: "parquet", clickhouseFormat: "Parquet" },
};

/** Oldest first, in the table's sort order, so ClickHouse reads in order instead of sorting. */
export const EXPORT_ORDER = "ORDER BY tenant_id, time, id";

/** More distinct attribute keys than this, and a CSV export carries them as one JSON column. */
export const MAX_CSV_ATTRIBUTE_COLUMNS = 1000;

/**
 * RFC 3339 in UTC, with 0, 3 or 6 fraction digits: exactly how protobuf JSON
 * writes a Timestamp, so an NDJSON line equals the Event's JSON from the API.
 */
function rfc3339(column: string): string {
  const fraction = `formatDateTime(${column}, '%f', 'UTC')`;
  return `concat(formatDateTime(${column}, '%Y-%m-%dT%H:%i:%S', 'UTC'),
    multiIf(${fraction} = '000000', '', endsWith(${fraction}, '000'), concat('.', substring(${fraction}, 1, 3)), concat('.', ${fraction})), 'Z')`;
}

interface JsonField {
  key: string;
  /** SQL producing the value's JSON text. */
  json: string;
  /** SQL that is true when the field is present; proto JSON omits defaults. */
  present: string;
}

const text = (key: string, column: string): JsonField => ({ key, json: `toJSONString(${column})`, present: `${column} != ''` });

/** A JSON object of the present fields, in order. */
function jsonObject(fields: JsonField[]): string {
  const members = fields.map((f) => `if(${f.present}, concat('${JSON.stringify(f.key)}:', ${f.json}), '')`);
  return `concat('{', arrayStringConcat(arrayFilter(m -> m != '', [${members.join(",\n    ")}]), ','), '}')`;
}

const ACTOR: JsonField[] = [
  text("id", "actor_id"),
  text("type", "actor_type"),
  text("name", "actor_name"),
  text("sessionId", "actor_session_id"),
  text("ip", "actor_ip"),
  text("userAgent", "actor_user_agent"),
];
const RESOURCE: JsonField[] = [text("type", "resource_type"), text("id", "resource_id"), text("name", "resource_name")];

/** The signed checkpoint an event ends, as the Checkpoint message: what an offline verifier checks. */
const CHECKPOINT: JsonField[] = [
  text("tenantId", "tenant_id"),
  text("chainId", "chain_id"),
  { key: "seq", json: "toJSONString(toString(seq))", present: "1" },
  text("headHash", "hash"),
  { key: "time", json: `toJSONString(${rfc3339("received_at")})`, present: "1" },
  text("signature", "checkpoint_signature"),
  text("keyId", "checkpoint_key_id"),
];

/** One Event per line, as protobuf JSON (camelCase names, enum names, defaults omitted). */
const NDJSON_LINE = jsonObject([
  text("id", "id"),
  text("tenantId", "tenant_id"),
  { key: "time", json: `toJSONString(${rfc3339("time")})`, present: "1" },
  { key: "utcOffsetMinutes", json: "toString(utc_offset_minutes)", present: "utc_offset_minutes != 0" },
  text("type", "type"),
  text("action", "action"),
  { key: "outcome", json: "toJSONString(concat('OUTCOME_', toString(outcome)))", present: "outcome != 'UNSPECIFIED'" },
  { key: "severity", json: "toJSONString(concat('SEVERITY_', toString(severity)))", present: "severity != 'UNSPECIFIED'" },
  { key: "actor", json: jsonObject(ACTOR), present: "1" },
  {
    key: "resource",
    json: jsonObject(RESOURCE),
    present: "resource_type != '' OR resource_id != '' OR resource_name != ''",
  },
  text("source", "source"),
  text("requestId", "request_id"),
  text("message", "message"),
  { key: "attributes", json: "toJSONString(attributes)", present: "notEmpty(attributes)" },
  // Stored as the JSON text of the object: embedded as is.
  { key: "before", json: "before", present: "before != ''" },
  { key: "after", json: "after", present: "after != ''" },
  { key: "receivedAt", json: `toJSONString(${rfc3339("received_at")})`, present: "1" },
  text("chainId", "chain_id"),
  { key: "seq", json: "toJSONString(toString(seq))", present: "seq != 0" },
  text("prevHash", "prev_hash"),
  text("hash", "hash"),
  { key: "checkpoint", json: jsonObject(CHECKPOINT), present: "checkpoint_signature != ''" },
]);

/** CSV columns before the attributes: proto field paths, nested fields dotted. */
const CSV_COLUMNS: [header: string, sql: string][] = [
  ["id", "id"],
  ["tenant_id", "tenant_id"],
  ["time", rfc3339("time")],
  ["utc_offset_minutes", "utc_offset_minutes"],
  ["type", "type"],
  ["action", "action"],
  ["outcome", "if(outcome = 'UNSPECIFIED', '', toString(outcome))"],
  ["severity", "toString(severity)"],
  ["actor.id", "actor_id"],
  ["actor.type", "actor_type"],
  ["actor.name", "actor_name"],
  ["actor.session_id", "actor_session_id"],
  ["actor.ip", "actor_ip"],
  ["actor.user_agent", "actor_user_agent"],
  ["resource.type", "resource_type"],
  ["resource.id", "resource_id"],
  ["resource.name", "resource_name"],
  ["source", "source"],
  ["request_id", "request_id"],
  ["message", "message"],
  ["before", "before"],
  ["after", "after"],
  ["received_at", rfc3339("received_at")],
  ["chain_id", "chain_id"],
  ["seq", "seq"],
  ["prev_hash", "prev_hash"],
  ["hash", "hash"],
  ["checkpoint.signature", "checkpoint_signature"],
  ["checkpoint.key_id", "checkpoint_key_id"],
];

/** Typed columns: timestamps stay timestamps, actor and resource are structs, attributes a map. */
const PARQUET_COLUMNS = `id, tenant_id, time, utc_offset_minutes, type, action,
  toString(outcome) AS outcome, toString(severity) AS severity,
  CAST((actor_id, actor_type, actor_name, actor_session_id, actor_ip, actor_user_agent),
    'Tuple(id String, type String, name String, session_id String, ip String, user_agent String)') AS actor,
  CAST((resource_type, resource_id, resource_name), 'Tuple(type String, id String, name String)') AS resource,
  source, request_id, message, CAST(attributes, 'Map(String, String)') AS attributes, before, after, received_at,
  chain_id, seq, prev_hash, hash, checkpoint_signature, checkpoint_key_id`;

/**
 * CSV columns whose text is ours or a number, never a producer's free text:
 * left alone by the formula-safe option (a "-60" offset must stay a number).
 */
const NOT_FREE_TEXT = new Set(["tenant_id", "time", "utc_offset_minutes", "outcome", "severity", "received_at", "chain_id", "seq", "prev_hash", "hash", "checkpoint.signature", "checkpoint.key_id"]);

/**
 * A text cell a spreadsheet would evaluate (it starts with =, +, -, @, a tab,
 * a carriage return or a NUL, the class OWASP ASVS lists) gets a leading
 * single quote: OWASP's advice against CSV injection. The rest of the cell is
 * unchanged.
 */
const formulaSafe = (sql: string) => `if(match(${sql}, '^[-=+@\\t\\r\\\\x00]'), concat('\\'', ${sql}), ${sql})`;

/** RFC 4180: quote every field, double the quotes inside. */
const csvField = (value: string) => `"${value.replaceAll('"', '""')}"`;

export interface ExportSelect {
  /** The SELECT list; `where` may have gained parameters for it. */
  columns: string;
  /** Bytes the file starts with before ClickHouse's output (the CSV header row). */
  preamble: string;
}

/**
 * The SELECT list for a format. For CSV, `attributeKeys` are the distinct keys
 * of the exported events (sorted); each becomes an `attributes.<key>` column,
 * or, past MAX_CSV_ATTRIBUTE_COLUMNS, one `attributes` column of JSON.
 */
export function exportSelect(
  format: ExportFormatName,
  where: Conditions,
  attributeKeys: string[] = [],
  options: { formulaSafe: boolean } = { formulaSafe: false },
): ExportSelect {
  if (format === "ndjson") return { columns: NDJSON_LINE, preamble: "" };
  if (format === "parquet") return { columns: PARQUET_COLUMNS, preamble: "" };
  const headers = CSV_COLUMNS.map(([header]) => header);
  const columns = CSV_COLUMNS.map(([, sql]) => sql);
  if (attributeKeys.length > MAX_CSV_ATTRIBUTE_COLUMNS) {
    headers.push("attributes");
    columns.push("toJSONString(attributes)");
  } else {
    for (const key of attributeKeys) {
      headers.push(`attributes.${key}`);
      columns.push(`attributes[${where.param("String", key)}]`);
    }
  }
  const cells = options.formulaSafe ? columns.map((sql, i) => (NOT_FREE_TEXT.has(headers[i]) ? sql : formulaSafe(sql))) : columns;
  return { columns: cells.join(", "), preamble: headers.map(csvField).join(",") + "\r\n" };
}

/** Constant settings for every export: modest blocks keep each streamed chunk a few MiB. */
export function exportSettings(format: ExportFormatName): Record<string, string | number> {
  const common = { max_block_size: 4096, output_format_json_escape_forward_slashes: 0 };
  if (format === "csv") return { ...common, output_format_csv_crlf_end_of_line: 1 };
  if (format === "parquet") {
    return { ...common, output_format_parquet_row_group_size: 65536, output_format_parquet_row_group_size_bytes: 32 * 1024 * 1024 };
  }
  return common;
}
