import { resolve } from "node:path";
import { DEFAULT_REDACTION_RULES, type RedactionRules } from "./ingest/redact.ts";
import { DEFAULT_EVENT_LIMITS } from "./ingest/rules.ts";
import type { RateLimitValues } from "./tenants/tenant-store.ts";

/** Everything the service reads from its environment, validated once at start. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  tls?: { certFile: string; keyFile: string };
  logLevel: string;
  /** Grace period for in-flight calls on SIGTERM before they are cut. */
  shutdownGraceMs: number;
  /** RPC responses smaller than this go uncompressed, whatever the client accepts. */
  compressMinBytes: number;
  /** When set, GET /metrics answers only `Authorization: Bearer <it>` (Prometheus `authorization.credentials`). */
  metricsToken?: string;
  store: StoreConfig;
  auth: AuthConfig;
  ingest: IngestConfig;
  query: QueryConfig;
  integrity: IntegrityConfig;
  tenants: TenantsConfig;
  rateLimits: RateLimitConfig;
  /** The global redaction rules; tenants add to them. */
  redaction: RedactionRules;
}

export interface TenantsConfig {
  /** Create an unknown tenant on its first authenticated request, instead of refusing it. */
  autoCreate: boolean;
}

export interface RateLimitConfig {
  /** How many seconds of its rate a bucket holds: the burst allowed after a quiet spell. */
  burstSeconds: number;
  /** For tenants that set none; 0: unlimited. */
  defaults: RateLimitValues;
}

export interface IntegrityConfig {
  /** Hash-chain and sign every batch. Off only to measure what it costs. */
  hashChain: boolean;
  /** Ed25519 PKCS#8 PEM (text or path); generated into the data dir when absent. */
  signingKey?: string;
  /** This writer's chain id; generated into the data dir when absent. Unique per instance. */
  instanceId?: string;
}

export type StoreConfig =
  | {
      kind: "chdb";
      path: string;
      retentionDays: number;
      dedupWindowDays: number;
      /** A partition of events that has received nothing for this long is merged into one part (0: never forced). */
      compactIdlePartitionSeconds: number;
      fsync: boolean;
      /** AES-256 key (hex) of the encrypted disk every table lives on; absent: a plain store. */
      encryptionKey?: string;
      storagePolicy?: string;
      /** Engine sessions a read streams on when chdb-node's queue of parameterized calls is busy (see store/streamed-queries.ts). */
      readConnections: number;
    }
  | {
      kind: "server";
      url: string;
      /** Create and update the schema on start; off when the service runs as a writer-only user. */
      migrate: boolean;
      username: string;
      password: string;
      database: string;
      retentionDays: number;
      dedupWindowDays: number;
      /** A partition of events that has received nothing for this long is merged into one part (0: never forced). */
      compactIdlePartitionSeconds: number;
      fsync: boolean;
      /** A storage policy of the server's config (e.g. on an encrypted disk) for new tables. */
      storagePolicy?: string;
    };

export interface AuthConfig {
  /** HS256 shared secret; when absent and no other key is configured, one is generated in the data dir. */
  secret?: string;
  jwksUrl?: string;
  /**
   * How long a fetched JWKS is used before it is fetched again. A key removed
   * from it (rotated out, or compromised) is refused at most this long after,
   * plus the memory of a verified token (60 s, or this if shorter).
   */
  jwksMaxAgeSec: number;
  /** PEM-encoded SPKI public key (RS256, ES256 or EdDSA, chosen by key type). */
  publicKeyPem?: string;
  issuer?: string;
  audience?: string;
  tenantClaim: string;
  rolesClaim: string;
  /** Tolerated clock skew for exp/nbf, in seconds. */
  clockToleranceSec: number;
}

export interface IngestConfig {
  /** Flush a batch once it holds this many events... */
  batchMaxEvents: number;
  /** ...or this many bytes of events (keeps one INSERT well inside V8's string limit)... */
  batchMaxBytes: number;
  /** ...or once its oldest event has waited this long. */
  batchMaxDelayMs: number;
  /** Bytes of events admitted but not yet committed; beyond it, streams stop being read. */
  queueMaxBytes: number;
  maxEventsPerRequest: number;
  /** Largest protobuf/JSON request body accepted on any protocol. */
  maxRequestBytes: number;
  limits: EventLimits;
}

export interface EventLimits {
  maxEventBytes: number;
  maxMessageBytes: number;
  maxAttributes: number;
  maxAttributeKeyBytes: number;
  maxAttributeValueBytes: number;
  maxStateBytes: number;
  maxFieldBytes: number;
  maxFutureSkewMs: number;
}

export interface QueryConfig {
  defaultPageSize: number;
  maxPageSize: number;
  /** Live events queued per tail subscriber before it is told it lagged. */
  tailQueueMaxBytes: number;
  /** The tenant whose log records reads across all tenants by admin tokens without a tenant. */
  adminAuditTenant: string;
  /**
   * How long the audit event of a read may wait for its batch (longer than
   * ingest's window: nobody waits on it, and every commit competes with reads).
   */
  readAuditMaxDelayMs: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function list(env: Env, name: string): string[] {
  return (str(env, name) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

function str(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === "" ? undefined : raw;
}

function instanceId(env: Env): string | undefined {
  const id = str(env, "AUDITLOG_INSTANCE_ID");
  if (id !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    throw new ConfigError(`AUDITLOG_INSTANCE_ID must be 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(id)}`);
  }
  return id;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(str(env, "AUDITLOG_DATA_DIR") ?? "./data");
  const retentionDays = int(env, "AUDITLOG_RETENTION_DAYS", 90, 1, 36500);
  const fsync = bool(env, "AUDITLOG_FSYNC", true);
  // Remembering an id longer than its event is kept would acknowledge
  // retries of events that are gone.
  const dedupWindowDays = Math.min(int(env, "AUDITLOG_DEDUP_WINDOW_DAYS", 7, 1, 3650), retentionDays);
  const compactIdlePartitionSeconds = int(env, "AUDITLOG_COMPACT_IDLE_PARTITION_SECONDS", 2 * 86_400, 0, 365 * 86_400);
  const url = str(env, "CLICKHOUSE_URL");
  const encryptionKey = str(env, "AUDITLOG_ENCRYPTION_KEY");
  if (encryptionKey !== undefined && !/^[0-9a-fA-F]{64}$/.test(encryptionKey)) {
    throw new ConfigError("AUDITLOG_ENCRYPTION_KEY must be 64 hex digits (an AES-256 key, e.g. from `openssl rand -hex 32`)");
  }
  if (encryptionKey !== undefined && url) {
    throw new ConfigError("AUDITLOG_ENCRYPTION_KEY is for the embedded store; on a ClickHouse server configure an encrypted disk and set AUDITLOG_STORAGE_POLICY");
  }
  const storagePolicy = str(env, "AUDITLOG_STORAGE_POLICY");
  if (storagePolicy !== undefined && !/^[A-Za-z0-9_]{1,64}$/.test(storagePolicy)) {
    throw new ConfigError(`AUDITLOG_STORAGE_POLICY must be a policy name of letters, digits and _, got ${JSON.stringify(storagePolicy)}`);
  }
  const store: StoreConfig = url
    ? {
        kind: "server",
        url,
        username: str(env, "CLICKHOUSE_USER") ?? "default",
        password: env.CLICKHOUSE_PASSWORD ?? "",
        database: str(env, "CLICKHOUSE_DATABASE") ?? "default",
        retentionDays,
        dedupWindowDays,
        compactIdlePartitionSeconds,
        fsync,
        migrate: bool(env, "AUDITLOG_MIGRATE", true),
        storagePolicy,
      }
    : {
        kind: "chdb",
        path: resolve(dataDir, "chdb"),
        retentionDays,
        dedupWindowDays,
        compactIdlePartitionSeconds,
        fsync,
        encryptionKey,
        storagePolicy,
        readConnections: int(env, "AUDITLOG_READ_CONNECTIONS", 4, 1, 64),
      };

  const certFile = str(env, "AUDITLOG_TLS_CERT");
  const keyFile = str(env, "AUDITLOG_TLS_KEY");
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new ConfigError("AUDITLOG_TLS_CERT and AUDITLOG_TLS_KEY must be set together");
  }

  // Keys from an identity provider are shared with its other applications:
  // without iss and aud, a token minted for any of them would be accepted.
  const asymmetric = str(env, "AUDITLOG_JWT_JWKS_URL") ?? str(env, "AUDITLOG_JWT_PUBLIC_KEY");
  if (asymmetric && !(str(env, "AUDITLOG_JWT_ISSUER") && str(env, "AUDITLOG_JWT_AUDIENCE"))) {
    throw new ConfigError(
      "AUDITLOG_JWT_ISSUER and AUDITLOG_JWT_AUDIENCE are required with AUDITLOG_JWT_JWKS_URL or AUDITLOG_JWT_PUBLIC_KEY",
    );
  }

  const maxRequestBytes = int(env, "AUDITLOG_MAX_REQUEST_BYTES", 16 * 1024 * 1024, 1024, 256 * 1024 * 1024);
  const batchMaxEvents = int(env, "AUDITLOG_BATCH_MAX_EVENTS", 10_000, 1, 1_000_000);
  const maxEventsPerRequest = int(env, "AUDITLOG_MAX_EVENTS_PER_REQUEST", 10_000, 1, 1_000_000);

  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: str(env, "HOST") ?? "0.0.0.0",
    dataDir,
    tls: certFile && keyFile ? { certFile, keyFile } : undefined,
    logLevel: str(env, "LOG_LEVEL") ?? "info",
    shutdownGraceMs: int(env, "AUDITLOG_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    compressMinBytes: int(env, "AUDITLOG_COMPRESS_MIN_BYTES", 64 * 1024, 0, 1024 * 1024 * 1024),
    metricsToken: str(env, "AUDITLOG_METRICS_TOKEN"),
    store,
    auth: {
      secret: str(env, "AUDITLOG_JWT_SECRET"),
      jwksUrl: str(env, "AUDITLOG_JWT_JWKS_URL"),
      jwksMaxAgeSec: int(env, "AUDITLOG_JWT_JWKS_MAX_AGE_SEC", 300, 1, 86_400),
      publicKeyPem: str(env, "AUDITLOG_JWT_PUBLIC_KEY"),
      issuer: str(env, "AUDITLOG_JWT_ISSUER"),
      audience: str(env, "AUDITLOG_JWT_AUDIENCE"),
      tenantClaim: str(env, "AUDITLOG_JWT_TENANT_CLAIM") ?? "tenant",
      rolesClaim: str(env, "AUDITLOG_JWT_ROLES_CLAIM") ?? "roles",
      clockToleranceSec: int(env, "AUDITLOG_JWT_CLOCK_TOLERANCE_SEC", 30, 0, 3600),
    },
    ingest: {
      batchMaxEvents,
      batchMaxBytes: int(env, "AUDITLOG_BATCH_MAX_BYTES", 32 * 1024 * 1024, 1024, 256 * 1024 * 1024),
      batchMaxDelayMs: int(env, "AUDITLOG_BATCH_MAX_DELAY_MS", 100, 1, 60_000),
      queueMaxBytes: int(env, "AUDITLOG_QUEUE_MAX_BYTES", 128 * 1024 * 1024, 1024, 16 * 1024 * 1024 * 1024),
      maxEventsPerRequest,
      maxRequestBytes,
      limits: { ...DEFAULT_EVENT_LIMITS, maxEventBytes: int(env, "AUDITLOG_MAX_EVENT_BYTES", DEFAULT_EVENT_LIMITS.maxEventBytes, 1024, 16 * 1024 * 1024) },
    },
    integrity: {
      hashChain: bool(env, "AUDITLOG_HASH_CHAIN", true),
      signingKey: str(env, "AUDITLOG_SIGNING_KEY"),
      instanceId: instanceId(env),
    },
    tenants: { autoCreate: bool(env, "AUDITLOG_AUTO_CREATE_TENANTS", false) },
    rateLimits: {
      burstSeconds: int(env, "AUDITLOG_RATE_BURST_SECONDS", 2, 1, 3600),
      defaults: {
        ingestEventsPerSecond: int(env, "AUDITLOG_RATE_TENANT_EVENTS", 0, 0, 100_000_000),
        requestsPerSecond: int(env, "AUDITLOG_RATE_TENANT_REQUESTS", 0, 0, 100_000_000),
        principalIngestEventsPerSecond: int(env, "AUDITLOG_RATE_PRINCIPAL_EVENTS", 0, 0, 100_000_000),
        principalRequestsPerSecond: int(env, "AUDITLOG_RATE_PRINCIPAL_REQUESTS", 0, 0, 100_000_000),
      },
    },
    redaction: {
      keys: [...DEFAULT_REDACTION_RULES.keys, ...list(env, "AUDITLOG_REDACT_KEYS")],
      detectors: {
        cardNumbers: bool(env, "AUDITLOG_REDACT_CARD_NUMBERS", DEFAULT_REDACTION_RULES.detectors.cardNumbers),
        bearerTokens: bool(env, "AUDITLOG_REDACT_BEARER_TOKENS", DEFAULT_REDACTION_RULES.detectors.bearerTokens),
        emails: bool(env, "AUDITLOG_REDACT_EMAILS", DEFAULT_REDACTION_RULES.detectors.emails),
      },
    },
    query: {
      defaultPageSize: 50,
      maxPageSize: 1000,
      tailQueueMaxBytes: int(env, "AUDITLOG_TAIL_QUEUE_BYTES", 8 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      adminAuditTenant: str(env, "AUDITLOG_ADMIN_AUDIT_TENANT") ?? "_admin",
      readAuditMaxDelayMs: int(env, "AUDITLOG_READ_AUDIT_DELAY_MS", 1000, 1, 60_000),
    },
  };
}
