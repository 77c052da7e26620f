import { randomBytes } from "node:crypto";
import { loadOrCreateFile } from "../data-file.ts";

export const SECRET_FILE = "jwt-secret";

/**
 * The HS256 secret used when none is configured: generated once into the data
 * directory (mode 0600) so that the server and `auditlog token` agree without
 * any setup. Returns whether it was created now, to tell the operator.
 */
export function loadOrCreateSecret(dataDir: string): { secret: string; created: boolean; file: string } {
  const { value, created, file } = loadOrCreateFile(dataDir, SECRET_FILE, () => randomBytes(32).toString("base64url") + "\n");
  return { secret: value.trim(), created, file };
}
