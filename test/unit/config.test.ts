import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected loadConfig to throw");
}

describe("loadConfig: defaults", () => {
  it("serves on 0.0.0.0:8080 from ./data with an embedded store", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      dataDir: resolve("./data"),
      logLevel: "info",
      shutdownGraceMs: 10_000,
      store: { kind: "chdb", path: resolve("./data", "chdb"), retentionDays: 90, dedupWindowDays: 7, fsync: true },
    });
    expect(config.tls).toBeUndefined();
  });

  it("has the documented auth defaults", () => {
    expect(loadConfig({}).auth).toEqual({
      secret: undefined,
      jwksUrl: undefined,
      jwksMaxAgeSec: 300,
      publicKeyPem: undefined,
      issuer: undefined,
      audience: undefined,
      tenantClaim: "tenant",
      rolesClaim: "roles",
      clockToleranceSec: 30,
    });
  });

  it("has the documented ingest and query defaults", () => {
    const config = loadConfig({});
    expect(config.ingest).toEqual({
      batchMaxEvents: 10_000,
      batchMaxBytes: 32 * 1024 * 1024,
      batchMaxDelayMs: 100,
      queueMaxBytes: 128 * 1024 * 1024,
      maxEventsPerRequest: 10_000,
      maxRequestBytes: 16 * 1024 * 1024,
      limits: {
        maxEventBytes: 64 * 1024,
        maxMessageBytes: 8 * 1024,
        maxAttributes: 64,
        maxAttributeKeyBytes: 128,
        maxAttributeValueBytes: 4 * 1024,
        maxStateBytes: 32 * 1024,
        maxFieldBytes: 256,
        maxFutureSkewMs: 5 * 60 * 1000,
      },
    });
    expect(config.query).toEqual({ defaultPageSize: 50, maxPageSize: 1000, tailQueueMaxBytes: 8 * 1024 * 1024, adminAuditTenant: "_admin", readAuditMaxDelayMs: 1000 });
    expect(config.integrity).toEqual({ hashChain: true, signingKey: undefined, instanceId: undefined });
    expect(config.compressMinBytes).toBe(64 * 1024);
  });

  it("takes an instance id of safe characters only", () => {
    expect(loadConfig({ AUDITLOG_INSTANCE_ID: "pod-7.eu_1" }).integrity.instanceId).toBe("pod-7.eu_1");
    expect(() => loadConfig({ AUDITLOG_INSTANCE_ID: "a/b" })).toThrow('AUDITLOG_INSTANCE_ID must be 1 to 64 letters, digits, ".", "_" or "-", got "a/b"');
  });

  it("treats an empty variable as unset", () => {
    const config = loadConfig({ PORT: "", HOST: "", AUDITLOG_FSYNC: "", CLICKHOUSE_URL: "", AUDITLOG_JWT_SECRET: "" });
    expect(config.port).toBe(8080);
    expect(config.host).toBe("0.0.0.0");
    expect(config.store.kind).toBe("chdb");
    expect(config.store.fsync).toBe(true);
    expect(config.auth.secret).toBeUndefined();
  });
});

describe("loadConfig: overrides", () => {
  it("reads numbers, strings and the data dir", () => {
    const config = loadConfig({
      PORT: "9090",
      HOST: "127.0.0.1",
      AUDITLOG_DATA_DIR: "/var/lib/auditlog",
      LOG_LEVEL: "debug",
      AUDITLOG_RETENTION_DAYS: "365",
      AUDITLOG_BATCH_MAX_DELAY_MS: "5",
      AUDITLOG_MAX_EVENT_BYTES: "2048",
      AUDITLOG_JWT_SECRET: "s3cret",
      AUDITLOG_JWT_ISSUER: "https://issuer",
      AUDITLOG_JWT_TENANT_CLAIM: "org",
    });
    expect(config.port).toBe(9090);
    expect(config.host).toBe("127.0.0.1");
    expect(config.dataDir).toBe("/var/lib/auditlog");
    expect(config.store).toMatchObject({ kind: "chdb", path: "/var/lib/auditlog/chdb", retentionDays: 365 });
    expect(config.logLevel).toBe("debug");
    expect(config.ingest.batchMaxDelayMs).toBe(5);
    expect(config.ingest.limits.maxEventBytes).toBe(2048);
    expect(config.auth).toMatchObject({ secret: "s3cret", issuer: "https://issuer", tenantClaim: "org", rolesClaim: "roles" });
  });

  it("accepts the bounds of a range", () => {
    expect(loadConfig({ PORT: "0" }).port).toBe(0);
    expect(loadConfig({ PORT: "65535" }).port).toBe(65535);
  });

  it.each([
    ["1", true],
    ["true", true],
    ["YES", true],
    ["on", true],
    ["0", false],
    ["false", false],
    ["No", false],
    ["off", false],
  ])("reads AUDITLOG_FSYNC=%j as %s", (raw, value) => {
    expect(loadConfig({ AUDITLOG_FSYNC: raw }).store.fsync).toBe(value);
  });

  it("rejects a boolean it does not understand", () => {
    expect(configError({ AUDITLOG_FSYNC: "maybe" }).message).toBe('AUDITLOG_FSYNC must be true or false, got "maybe"');
  });
});

describe("loadConfig: integer validation", () => {
  it.each([
    ["PORT", "abc", 0, 65535],
    ["PORT", "70000", 0, 65535],
    ["PORT", "-1", 0, 65535],
    ["PORT", "80.5", 0, 65535],
    ["PORT", " ", 0, 65535],
    ["PORT", "0x10", 0, 65535],
    ["PORT", "1e3", 0, 65535],
    ["AUDITLOG_RETENTION_DAYS", "0", 1, 36500],
    ["AUDITLOG_BATCH_MAX_EVENTS", "0", 1, 1_000_000],
    ["AUDITLOG_BATCH_MAX_DELAY_MS", "60001", 1, 60_000],
    ["AUDITLOG_MAX_EVENT_BYTES", "1023", 1024, 16 * 1024 * 1024],
    ["AUDITLOG_MAX_REQUEST_BYTES", "lots", 1024, 256 * 1024 * 1024],
    ["AUDITLOG_SHUTDOWN_GRACE_MS", "NaN", 0, 600_000],
    ["AUDITLOG_COMPRESS_MIN_BYTES", "-1", 0, 1024 * 1024 * 1024],
    ["AUDITLOG_JWT_CLOCK_TOLERANCE_SEC", "3601", 0, 3600],
    ["AUDITLOG_JWT_JWKS_MAX_AGE_SEC", "0", 1, 86_400],
  ])("rejects %s=%j, naming the variable and its range", (name, raw, min, max) => {
    const err = configError({ [name]: raw });
    expect(err.message).toBe(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  });
});

describe("loadConfig: ClickHouse server", () => {
  it("switches the store to a server when CLICKHOUSE_URL is set", () => {
    const config = loadConfig({ CLICKHOUSE_URL: "http://ch:8123", AUDITLOG_RETENTION_DAYS: "30", AUDITLOG_FSYNC: "false" });
    expect(config.store).toEqual({
      kind: "server",
      url: "http://ch:8123",
      username: "default",
      password: "",
      database: "default",
      retentionDays: 30,
      dedupWindowDays: 7,
      compactIdlePartitionSeconds: 172_800,
      fsync: false,
      migrate: true,
    });
    expect(loadConfig({ CLICKHOUSE_URL: "http://ch:8123", AUDITLOG_MIGRATE: "false" }).store).toMatchObject({ migrate: false });
  });

  it("compacts a quiet partition after 2 days unless told otherwise, and never when told 0", () => {
    expect(loadConfig({}).store.compactIdlePartitionSeconds).toBe(172_800);
    expect(loadConfig({ AUDITLOG_COMPACT_IDLE_PARTITION_SECONDS: "0" }).store.compactIdlePartitionSeconds).toBe(0);
    expect(() => loadConfig({ AUDITLOG_COMPACT_IDLE_PARTITION_SECONDS: "-1" })).toThrow(/AUDITLOG_COMPACT_IDLE_PARTITION_SECONDS must be an integer between 0 and 31536000/);
  });

  it("reads the server credentials and database", () => {
    const config = loadConfig({
      CLICKHOUSE_URL: "https://ch.example:8443",
      CLICKHOUSE_USER: "audit",
      CLICKHOUSE_PASSWORD: "pw",
      CLICKHOUSE_DATABASE: "audit_db",
    });
    expect(config.store).toMatchObject({ kind: "server", username: "audit", password: "pw", database: "audit_db" });
  });
});

describe("loadConfig: TLS", () => {
  it("enables TLS when both files are given", () => {
    expect(loadConfig({ AUDITLOG_TLS_CERT: "/c.pem", AUDITLOG_TLS_KEY: "/k.pem" }).tls).toEqual({ certFile: "/c.pem", keyFile: "/k.pem" });
  });

  it.each([{ AUDITLOG_TLS_CERT: "/c.pem" }, { AUDITLOG_TLS_KEY: "/k.pem" }, { AUDITLOG_TLS_CERT: "/c.pem", AUDITLOG_TLS_KEY: "" }])(
    "rejects one TLS file without the other (%o)",
    (env) => {
      expect(configError(env).message).toBe("AUDITLOG_TLS_CERT and AUDITLOG_TLS_KEY must be set together");
    },
  );
});

describe("loadConfig: queue and batch bytes", () => {
  it("reads the byte bounds", () => {
    const config = loadConfig({ AUDITLOG_QUEUE_MAX_BYTES: "1048576", AUDITLOG_BATCH_MAX_BYTES: "65536" });
    expect(config.ingest.queueMaxBytes).toBe(1048576);
    expect(config.ingest.batchMaxBytes).toBe(65536);
  });

  it("rejects a byte bound below 1 KiB", () => {
    expect(configError({ AUDITLOG_QUEUE_MAX_BYTES: "10" }).message).toContain("AUDITLOG_QUEUE_MAX_BYTES must be an integer between 1024");
  });
});

describe("loadConfig: dedup window and token keys", () => {
  it("never remembers ids longer than events are kept", () => {
    expect(loadConfig({ AUDITLOG_RETENTION_DAYS: "1" }).store.dedupWindowDays).toBe(1);
    expect(loadConfig({ AUDITLOG_RETENTION_DAYS: "30", AUDITLOG_DEDUP_WINDOW_DAYS: "14" }).store.dedupWindowDays).toBe(14);
  });

  it("requires issuer and audience with a JWKS URL or a public key", () => {
    expect(configError({ AUDITLOG_JWT_JWKS_URL: "https://idp.test/jwks" }).message).toContain("AUDITLOG_JWT_ISSUER and AUDITLOG_JWT_AUDIENCE are required");
    expect(configError({ AUDITLOG_JWT_PUBLIC_KEY: "/k.pem", AUDITLOG_JWT_ISSUER: "x" }).message).toContain("are required");
    const ok = loadConfig({ AUDITLOG_JWT_JWKS_URL: "https://idp.test/jwks", AUDITLOG_JWT_ISSUER: "i", AUDITLOG_JWT_AUDIENCE: "a" });
    expect(ok.auth).toMatchObject({ jwksUrl: "https://idp.test/jwks", issuer: "i", audience: "a" });
  });
});
