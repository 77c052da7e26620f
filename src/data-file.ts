import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A value the service generates once and keeps in the data directory (mode
 * 0600): the token secret, the signing key, the instance id. Returns it, and
 * whether it was created now, to tell the operator.
 */
export function loadOrCreateFile(dataDir: string, name: string, create: () => string): { value: string; created: boolean; file: string } {
  const file = join(dataDir, name);
  try {
    return { value: readFileSync(file, "utf8"), created: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dataDir, { recursive: true });
  const value = create();
  try {
    // `wx`: if another process created it meanwhile, theirs wins and we read it.
    writeFileSync(file, value, { mode: 0o600, flag: "wx" });
    return { value, created: true, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return { value: readFileSync(file, "utf8"), created: false, file };
  }
}
