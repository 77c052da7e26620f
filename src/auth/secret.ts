import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const SECRET_FILE = "jwt-secret";

/**
 * The HS256 secret used when none is configured: generated once into the data
 * directory (mode 0600) so that the server and `auditlog token` agree without
 * any setup. Returns whether it was created now, to tell the operator.
 */
export function loadOrCreateSecret(dataDir: string): { secret: string; created: boolean; file: string } {
  const file = join(dataDir, SECRET_FILE);
  try {
    return { secret: readFileSync(file, "utf8").trim(), created: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  try {
    // `wx`: if another process created it meanwhile, theirs wins and we read it.
    writeFileSync(file, secret + "\n", { mode: 0o600, flag: "wx" });
    return { secret, created: true, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return { secret: readFileSync(file, "utf8").trim(), created: false, file };
  }
}
