// POST /api/session: the dashboard's LOCAL DEVELOPMENT sign-in. There is no password: whoever can
// reach the dashboard gets a short-lived token for the admin, or for the customer whose user id
// they send, signed with the local "sign-in" key that `npm start` makes (AUTH_SIGNING_KEY_FILE),
// which the services trust through their JWKS. A production deployment signs people in through a
// real identity provider instead, and the services verify its tokens against that provider's
// JWKS (AUTH_JWKS_URL); this route then has no place.
import { createSigner, readPrivateKey, type Signer } from "@shop/auth";
import { readConfig, type SignInConfig } from "../../../config.ts";
import { claimsOf, parseIdentity, type SessionGrant } from "../../../lib/identity.ts";
import { maxJsonBytes, readJson } from "../../../lib/request-body.ts";

const noStore = { "cache-control": "no-store" };

let cached: { key: string; signer: Promise<Signer> } | undefined;

/** One signer per key file, issuer and audience: the key is read and imported once. */
function signerFor(config: SignInConfig): Promise<Signer> {
  const key = JSON.stringify([config.keyFile, config.issuer, config.audience]);
  if (cached?.key !== key) {
    const signer = (async () =>
      createSigner({
        privateKey: readPrivateKey(config.keyFile),
        issuer: config.issuer,
        audience: config.audience,
      }))();
    cached = { key, signer };
    // A key that could not be read is tried again on the next request.
    signer.catch(() => {
      if (cached?.signer === signer) cached = undefined;
    });
  }
  return cached.signer;
}

function refuse(status: number, error: string): Response {
  return Response.json({ error }, { status, headers: noStore });
}

/** Signs the identity in the JSON body ({"role": "admin"} or {"role": "customer", "userId"}). */
export async function POST(request: Request): Promise<Response> {
  const { signIn } = readConfig();
  if (!signIn) {
    return refuse(404, "sign-in is off: the dashboard has no AUTH_SIGNING_KEY_FILE");
  }
  const body = await readJson(request);
  if (body === "too large") return refuse(413, `send at most ${maxJsonBytes} bytes`);
  if (body === undefined) return refuse(400, "send a JSON body");
  const parsed = parseIdentity(body);
  if ("problem" in parsed) return refuse(400, parsed.problem);
  let signer: Signer;
  try {
    signer = await signerFor(signIn);
  } catch (error) {
    console.error("the sign-in key could not be used", error);
    return refuse(500, "the dashboard's signing key could not be used");
  }
  const token = await signer.sign(claimsOf(parsed.identity), signIn.ttlSeconds);
  const grant: SessionGrant = {
    identity: parsed.identity,
    token,
    expiresInSeconds: signIn.ttlSeconds,
  };
  return Response.json(grant, { headers: noStore });
}
