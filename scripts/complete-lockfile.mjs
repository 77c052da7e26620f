#!/usr/bin/env node
// Run after `npm install` changes package-lock.json:  node scripts/complete-lockfile.mjs
//
// Some packages ship native binaries as per-platform optional dependencies
// (chdb, @bufbuild/buf). When the registry a lock is made against lacks a
// platform's package, npm writes no record for it, and `npm ci` then refuses
// the very lock npm wrote ("Missing: <pkg>@ from lock file"; npm/cli#9846).
// This adds the record npm would have written, with the platform taken from
// the package name, so `npm ci` accepts the lock and skips the package on
// every other platform. Records npm wrote itself are left alone.
import { readFileSync, writeFileSync } from "node:fs";

const LOCK = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, "utf8"));
const OS = { darwin: "darwin", linux: "linux", win32: "win32" };
const CPU = { arm64: "arm64", aarch64: "arm64", x64: "x64", armv7: "arm" };

function platformOf(name) {
  const parts = name.split("/").pop().split("-");
  const os = parts.map((p) => OS[p]).find(Boolean);
  const cpu = parts.map((p) => CPU[p]).find(Boolean);
  return os && cpu ? { os, cpu } : undefined;
}

let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const platform = platformOf(name);
    if (lock.packages[key] || !platform) continue;
    lock.packages[key] = {
      version,
      cpu: [platform.cpu],
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [platform.os],
    };
    added++;
    console.log(`added ${key}@${version} (${platform.os}/${platform.cpu}) for ${path || "the root"}`);
  }
}
if (added > 0) {
  lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
  writeFileSync(LOCK, JSON.stringify(lock, null, 2) + "\n");
}
console.log(`${added} platform record(s) added`);
