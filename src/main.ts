import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { isRole, type Role } from "./auth/principal.ts";
import { loadOrCreateSecret } from "./auth/secret.ts";
import { mintToken, parseDuration } from "./auth/token.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { loadOrCreateFile } from "./data-file.ts";
import { loadSigner } from "./integrity/signing-key.ts";

const USAGE = `usage: auditlog <command> [options]

commands:
  serve                               run the service (default)
  token --tenant T --role R[,R...]    print a signed HS256 token
        [--sub SUBJECT] [--ttl 1h]    roles: writer, user, auditor, admin
  migrate                             create or update the schema, then exit
                                      (for a ClickHouse admin; see README)
  verify --export FILE --public-key KEY
        [--json]                      verify an NDJSON export offline (no server,
                                      no database); exit 0 intact, 1 tampered

Configuration comes from the environment; see README.md.`;

/** The HS256 secret the server verifies with: configured, or the one kept in the data dir. */
function hmacSecret(config: Config): { secret: string; created: boolean; file?: string } | undefined {
  if (config.auth.secret) return { secret: config.auth.secret, created: false };
  if (config.auth.jwksUrl || config.auth.publicKeyPem) return undefined;
  return loadOrCreateSecret(config.dataDir);
}

async function token(config: Config, args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: "string", default: "" },
      role: { type: "string", multiple: true, default: [] },
      sub: { type: "string" },
      ttl: { type: "string", default: "1h" },
    },
  });
  const roles = values.role.flatMap((r) => r.split(",")).map((r) => r.trim()).filter(Boolean);
  const unknown = roles.filter((r) => !isRole(r));
  if (roles.length === 0 || unknown.length > 0) {
    throw new ConfigError(`--role must be one or more of writer, user, auditor, admin${unknown.length ? ` (unknown: ${unknown.join(", ")})` : ""}`);
  }
  if (!values.tenant && !roles.includes("admin")) throw new ConfigError("--tenant is required (only admin tokens may omit it)");
  const hmac = hmacSecret(config);
  if (!hmac) {
    throw new ConfigError("this server verifies tokens with a JWKS or public key; mint tokens with your identity provider, or set AUDITLOG_JWT_SECRET");
  }
  const jwt = await mintToken(
    hmac.secret,
    {
      tenant: values.tenant,
      roles: roles as Role[],
      subject: values.sub ?? `cli:${roles.join("+")}@${values.tenant || "*"}`,
      ttlSeconds: parseDuration(values.ttl),
      issuer: config.auth.issuer,
      audience: config.auth.audience,
    },
    { tenant: config.auth.tenantClaim, roles: config.auth.rolesClaim },
  );
  process.stdout.write(jwt + "\n");
}

async function migrateOnly(config: Config) {
  const [{ createStoreClient }, { migrate }] = await Promise.all([import("./store/client.ts"), import("./store/schema.ts")]);
  const client = await createStoreClient(config.store);
  await migrate(client, config.store);
  await client.close();
  process.stdout.write("schema is up to date\n");
}

async function verify(args: string[]) {
  const { values } = parseArgs({
    args,
    options: { export: { type: "string" }, "public-key": { type: "string" }, json: { type: "boolean", default: false } },
  });
  if (!values.export || !values["public-key"]) {
    throw new ConfigError("verify needs --export FILE (an NDJSON export) and --public-key KEY (PEM file, from GET /.well-known/auditlog-signing-key)");
  }
  const { verifyExport, describe } = await import("./integrity/offline.ts");
  const result = await verifyExport(values.export, values["public-key"]);
  process.stdout.write((values.json ? JSON.stringify(result) : describe(result)) + "\n");
  process.exitCode = result.reports.every((r) => !r.problem) ? 0 : 1;
}

async function serve(config: Config) {
  const [{ createLogger, withoutCredentials }, { createVerifier }, { createStoreClients }, { prepareStore }, { startServer }, { createQueryStreamer }] =
    await Promise.all([
      import("./log.ts"),
      import("./auth/verifier.ts"),
      import("./store/client.ts"),
      import("./store/readiness.ts"),
      import("./server.ts"),
      import("./store/query-stream.ts"),
    ]);
  const { createTenantRegistry } = await import("./tenants/registry.ts");
  const { log, flush } = createLogger(config.logLevel);
  const hmac = hmacSecret(config);
  if (hmac?.created) log.info({ file: hmac.file }, "generated a new HS256 token secret (mode 0600)");
  const verify = createVerifier(config.auth, hmac?.secret);
  const clients = await createStoreClients(config.store);
  const tenants = createTenantRegistry({ writer: clients.writer, reader: clients.reader, autoCreate: config.tenants.autoCreate, log });
  const store = prepareStore(clients.writer, config.store, log, async () => {
    await tenants.load();
    // The service writes the audit events of admins' cross-tenant reads there.
    await tenants.ensure(config.query.adminAuditTenant, "Reads across tenants by admin tokens");
  });
  // The embedded engine is local: wait for it, so the first call finds the schema.
  if (config.store.kind === "chdb") await store.whenReady;
  else {
    store.whenReady.catch((err: Error) => {
      log.fatal({ err }, err.message);
      void flush(1000).then(() => process.exit(1));
    });
  }
  const stream = createQueryStreamer(config.store, clients.reader, clients.paramQueue);
  const { signer, created: keyFile } = loadSigner(config.integrity.signingKey, config.dataDir);
  if (keyFile) log.info({ file: keyFile, keyId: signer.keyId }, "generated a new Ed25519 checkpoint signing key (mode 0600)");
  const chainId =
    config.integrity.instanceId ?? loadOrCreateFile(config.dataDir, "instance-id", () => randomBytes(6).toString("hex")).value.trim();
  const { createMetrics } = await import("./metrics.ts");
  const server = await startServer({ config, log, clients, store, verify, stream, signer, chainId, tenants, metrics: createMetrics() });
  // Before "listening" is printed: a supervisor that sends SIGTERM as soon as
  // it reads that line must find the handler installed, not the default exit.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: finishing in-flight calls and committing accepted events");
    try {
      store.stop();
      await server.close();
      tenants.close();
      await clients.close();
      log.info("stopped cleanly");
      await flush(1000);
      process.exit(0);
    } catch (err) {
      log.error({ err }, "shutdown failed");
      await flush(1000);
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  log.info(
    { port: server.port, store: config.store.kind === "chdb" ? config.store.path : withoutCredentials(config.store.url) },
    `listening on port ${server.port}`,
  );
  if (hmac) {
    log.info(`get a token: TOKEN=$(npx auditlog token --tenant acme --role writer,auditor) then curl -H "Authorization: Bearer $TOKEN" ...`);
    if (!config.tenants.autoCreate) {
      log.info(
        `create the tenant first (or set AUDITLOG_AUTO_CREATE_TENANTS=true): curl -H "Authorization: Bearer $(npx auditlog token --role admin)" ` +
          `-H 'Content-Type: application/json' http://localhost:${server.port}/auditlog.v1.TenantService/CreateTenant -d '{"tenant":{"tenantId":"acme"}}'`,
      );
    }
  }
}

async function main(argv: string[]) {
  const [command = "serve", ...rest] = argv;
  if (command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const config = loadConfig(process.env);
  if (command === "serve") return serve(config);
  if (command === "token") return token(config, rest);
  if (command === "verify") return verify(rest);
  if (command === "migrate") return migrateOnly(config);
  throw new ConfigError(`unknown command "${command}"\n\n${USAGE}`);
}

main(process.argv.slice(2)).catch((err) => {
  const message = err instanceof ConfigError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? err.message : err?.stack ?? String(err);
  process.stderr.write(`auditlog: ${message}\n`);
  process.exit(1);
});
