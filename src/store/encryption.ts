import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config.ts";

/**
 * Encryption at rest for the embedded store, by ClickHouse itself: an
 * encrypted disk (AES-256-CTR) under a storage policy every table is created
 * with, so data parts, marks and the text indexes reach the file system only
 * encrypted. The key never touches the data directory: the engine config
 * written here names the environment variable it is read from.
 */
export const ENCRYPTED_POLICY = "encrypted";
export const ENCRYPTION_KEY_ENV = "AUDITLOG_ENCRYPTION_KEY";

const ENGINE_CONFIG = "auditlog-engine.xml";
const MARKER = "auditlog-encryption.json";

/** Names the key without revealing it, so a wrong key is told apart from a damaged store. */
const fingerprint = (keyHex: string) => createHash("sha256").update(`auditlog-encryption:${keyHex.toLowerCase()}`).digest("hex").slice(0, 16);

/**
 * Checks the key against the one the store was created with and writes the
 * engine config. Returns the engine arguments, or none for a plain store.
 */
export function engineArgs(storePath: string, keyHex: string | undefined): string[] {
  const markerFile = join(storePath, MARKER);
  const marker = existsSync(markerFile) ? (JSON.parse(readFileSync(markerFile, "utf8")) as { fingerprint: string }) : undefined;
  const hasTables = existsSync(join(storePath, "store"));
  if (!keyHex) {
    if (marker) throw new ConfigError(`the store at ${storePath} is encrypted; set ${ENCRYPTION_KEY_ENV} to its key`);
    return [];
  }
  if (marker && marker.fingerprint !== fingerprint(keyHex)) {
    throw new ConfigError(`${ENCRYPTION_KEY_ENV} is not the key the store at ${storePath} was encrypted with (fingerprint ${marker.fingerprint})`);
  }
  if (!marker) {
    if (hasTables) {
      throw new ConfigError(
        `the store at ${storePath} was created without encryption; encryption is chosen when a store is created (README, "Encryption at rest")`,
      );
    }
    writeFileSync(markerFile, JSON.stringify({ fingerprint: fingerprint(keyHex) }) + "\n", { mode: 0o600 });
  }
  if (process.env[ENCRYPTION_KEY_ENV]?.toLowerCase() !== keyHex.toLowerCase()) {
    // The engine reads the key from its own environment, not from our config object.
    throw new ConfigError(`the engine reads the key from ${ENCRYPTION_KEY_ENV}; set it in the process environment`);
  }
  const configFile = join(storePath, ENGINE_CONFIG);
  writeFileSync(
    configFile,
    `<clickhouse>
  <storage_configuration>
    <disks>
      <encrypted_backing><type>local</type><path>${join(storePath, "encrypted")}/</path></encrypted_backing>
      <${ENCRYPTED_POLICY}>
        <type>encrypted</type>
        <disk>encrypted_backing</disk>
        <path></path>
        <algorithm>AES_256_CTR</algorithm>
        <key_hex from_env="${ENCRYPTION_KEY_ENV}"></key_hex>
      </${ENCRYPTED_POLICY}>
    </disks>
    <policies>
      <${ENCRYPTED_POLICY}><volumes><main><disk>${ENCRYPTED_POLICY}</disk></main></volumes></${ENCRYPTED_POLICY}>
    </policies>
  </storage_configuration>
</clickhouse>
`,
  );
  return [`--config-file=${configFile}`];
}
