// `npm run -s token`: prints a bearer token for calling the services by hand, signed with the local
// sign-in key that `npm start` made (in SHOP_DATA_DIR/auth), with the same claims as the
// dashboard's sign-in. By default an admin's, valid for an hour; `-- --customer <user-id>` gives a
// customer's, who sees only their own orders;
// `-- --key-file <private JWK>` signs with another key (docker-compose.yml's sign-in key).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  createSigner,
  defaultAudience,
  localIssuer,
  privateKeyFile,
  readPrivateKey,
  signInSigner,
} from "@shop/auth";
import { claimsOf, parseIdentity } from "../dashboard/src/lib/identity.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    customer: { type: "string" },
    "key-file": { type: "string" },
    ttl: { type: "string", default: "3600" },
  },
});
const ttlSeconds = Number(values.ttl);
if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
  throw new Error("--ttl takes a whole number of seconds");
}
const dataDir = process.env.SHOP_DATA_DIR ?? path.join(root, ".data");
const keyFile = values["key-file"] ?? privateKeyFile(path.join(dataDir, "auth"), signInSigner);
let privateKey: ReturnType<typeof readPrivateKey>;
try {
  privateKey = readPrivateKey(keyFile);
} catch {
  process.stderr.write(`no signing key at ${keyFile}: run \`npm start\` once to make it\n`);
  process.exit(1);
}
const signer = await createSigner({ privateKey, issuer: localIssuer, audience: defaultAudience });
const parsed = parseIdentity(
  values.customer === undefined ? { role: "admin" } : { role: "customer", userId: values.customer },
);
if ("problem" in parsed) {
  process.stderr.write(`--customer: ${parsed.problem}\n`);
  process.exit(1);
}
process.stdout.write(`${await signer.sign(claimsOf(parsed.identity), ttlSeconds)}\n`);
