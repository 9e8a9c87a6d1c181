// `node scripts/auth-keys.ts --dir <keys> [--jwks-out <dir>] [--key-out <signer>=<dir> ...]`: makes
// the local signing keys in <keys> once (kept on later runs), then hands out copies: the public JWKS
// to every --jwks-out folder (every service reads it) and each signer's private key only to its own
// --key-out folder. docker-compose.yml runs it before the services, one volume per reader, so that
// no container holds a private key it does not use. `npm start` makes its keys itself.
import { copyFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ensureLocalKeys, jwksFile, privateKeyFile, serviceSigner, signInSigner } from "@shop/auth";

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    "jwks-out": { type: "string", multiple: true, default: [] },
    "key-out": { type: "string", multiple: true, default: [] },
  },
});
if (!values.dir) throw new Error("--dir <folder for the keys> is required");
const keyOuts = values["key-out"].map((spec) => {
  const [signer, dir] = spec.split("=", 2);
  if (!signer || !dir) throw new Error(`--key-out takes <signer>=<dir>, not ${spec}`);
  return { signer, dir };
});
const signers = [
  ...new Set([signInSigner, serviceSigner("orders"), ...keyOuts.map((out) => out.signer)]),
];
await ensureLocalKeys(values.dir, signers);
for (const dir of values["jwks-out"]) {
  mkdirSync(dir, { recursive: true });
  copyFileSync(jwksFile(values.dir), path.join(dir, "jwks.json"));
}
for (const { signer, dir } of keyOuts) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  copyFileSync(privateKeyFile(values.dir, signer), privateKeyFile(dir, signer));
}
process.stdout.write(`signing keys ready: ${signers.join(", ")}\n`);
