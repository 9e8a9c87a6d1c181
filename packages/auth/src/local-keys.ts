import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWK } from "jose";

/** The algorithm of the keys made here. */
export const localAlgorithm = "ES256";

/** The issuer and audience the local keys sign for, unless configured otherwise. */
export const localIssuer = "urn:shop:local";
export const defaultAudience = "shop";

/** The signer (and key id) that signs people in: the dashboard's sign-in and `npm run token`. */
export const signInSigner = "sign-in";

/** Where one signer's private key lives in `dir`. */
export function privateKeyFile(dir: string, signer: string): string {
  return path.join(dir, `${signer.replaceAll(":", "-")}.private.jwk.json`);
}

/** Where the public keys of all local signers live in `dir`. */
export function jwksFile(dir: string): string {
  return path.join(dir, "jwks.json");
}

/**
 * Makes an ES256 key pair for each of `signers` (the sign-in of people, `signInSigner`; a service's own
 * identity, `serviceSigner(name)`) that `dir` does not hold yet, and writes the public half of
 * every key to one JWKS, the signer's name as its key id. Private keys are readable by their owner
 * only.
 */
export async function ensureLocalKeys(dir: string, signers: readonly string[]): Promise<void> {
  // Only the key folder is private: its parent (the data folder `npm start` also gives PostgreSQL,
  // which runs as another user) keeps the usual mode when it is made here.
  mkdirSync(path.dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const publicKeys: JWK[] = [];
  for (const signer of signers) {
    const file = privateKeyFile(dir, signer);
    let privateKey: JWK;
    try {
      privateKey = readPrivateKey(file);
    } catch {
      const pair = await generateKeyPair(localAlgorithm, { extractable: true });
      privateKey = { ...(await exportJWK(pair.privateKey)), alg: localAlgorithm, kid: signer };
      writeFileSync(file, `${JSON.stringify(privateKey)}\n`, { mode: 0o600 });
    }
    const { d: _secret, ...publicKey } = privateKey;
    publicKeys.push({ ...publicKey, use: "sig" });
  }
  const jwks: JSONWebKeySet = { keys: publicKeys };
  writeFileSync(jwksFile(dir), `${JSON.stringify(jwks, null, 2)}\n`);
}

/** Reads a private JWK written by ensureLocalKeys (or any JWK with `alg` and `kid`). */
export function readPrivateKey(file: string): JWK {
  const key = JSON.parse(readFileSync(file, "utf8")) as JWK;
  if (typeof key.d !== "string" || !key.alg || !key.kid) {
    throw new Error(`${file} is not a private JWK with alg and kid`);
  }
  return key;
}

/** Reads a JWKS file. */
export function readJwks(file: string): JSONWebKeySet {
  const jwks = JSON.parse(readFileSync(file, "utf8")) as JSONWebKeySet;
  if (!Array.isArray(jwks.keys)) throw new Error(`${file} is not a JWKS (no "keys")`);
  return jwks;
}
