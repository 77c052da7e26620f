import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadOrCreateFile } from "../data-file.ts";

export interface CheckpointSigner {
  keyId: string;
  publicKeyPem: string;
  /** Ed25519 signature of the UTF-8 bytes of `data`, base64. */
  sign(data: string): string;
}

export interface CheckpointVerifier {
  keyId: string;
  verify(data: string, signatureBase64: string): boolean;
}

/** The first 16 hex digits of SHA-256 of the key's SPKI DER: short, stable, derivable by anyone with the key. */
const keyIdOf = (publicKey: KeyObject) =>
  createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);

/** PEM text, or a path to a PEM file. */
const pemText = (value: string) => (value.includes("-----BEGIN") ? value : readFileSync(value, "utf8"));

/**
 * The Ed25519 key checkpoints are signed with: AUDITLOG_SIGNING_KEY (PKCS#8
 * PEM, text or path), or one generated on first start into the data
 * directory (mode 0600) and reused afterwards.
 */
export function loadSigner(configured: string | undefined, dataDir: string): { signer: CheckpointSigner; created?: string } {
  let privatePem: string;
  let created: string | undefined;
  if (configured) {
    privatePem = pemText(configured);
  } else {
    const stored = loadOrCreateFile(dataDir, "signing-key.pem", () =>
      generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    );
    privatePem = stored.value;
    if (stored.created) created = stored.file;
  }
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error("the signing key must be an Ed25519 private key (PKCS#8 PEM)");
  const publicKey = createPublicKey(privateKey);
  return {
    created,
    signer: {
      keyId: keyIdOf(publicKey),
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
      sign: (data) => sign(null, Buffer.from(data), privateKey).toString("base64"),
    },
  };
}

/** Checks signatures with a public key (SPKI PEM, text or path): what verifiers, online and offline, hold. */
export function checkpointVerifier(publicKeyPem: string): CheckpointVerifier {
  const publicKey = createPublicKey(pemText(publicKeyPem));
  if (publicKey.asymmetricKeyType !== "ed25519") throw new Error("the public key must be an Ed25519 key (SPKI PEM)");
  return {
    keyId: keyIdOf(publicKey),
    verify: (data, signature) => {
      try {
        return verify(null, Buffer.from(data), publicKey, Buffer.from(signature, "base64"));
      } catch {
        return false;
      }
    },
  };
}
