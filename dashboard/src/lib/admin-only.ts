// The dashboard's own data for admins (the traces its receiver keeps): a route checks the bearer
// token the page sends against the key the dashboard signs people in with.
import { createVerifier, InvalidTokenError, readPrivateKey, type Verifier } from "@shop/auth";
import type { SignInConfig } from "../config.ts";

let cached: { key: string; verifier: Verifier } | undefined;

/** A verifier of the tokens the dashboard signs: the sign-in key's public half. */
function verifierFor(config: SignInConfig): Verifier {
  const key = JSON.stringify([config.keyFile, config.issuer, config.audience]);
  if (cached?.key !== key) {
    const { d: _private, ...publicKey } = readPrivateKey(config.keyFile);
    const verifier = createVerifier({
      jwks: { keys: [publicKey] },
      issuer: config.issuer,
      audience: config.audience,
      algorithms: ["ES256"],
    });
    cached = { key, verifier };
  }
  return cached.verifier;
}

/**
 * Undefined when the request may read admins' data: sign-in is off (as the services with
 * AUTH=off), or it carries an admin's token the dashboard signed. Otherwise the refusal to send.
 */
export async function refuseUnlessAdmin(
  request: Request,
  signIn: SignInConfig | undefined,
): Promise<Response | undefined> {
  if (!signIn) return undefined;
  const header = request.headers.get("authorization") ?? "";
  const token = /^Bearer (.+)$/i.exec(header)?.[1];
  if (!token) return refusal(401, 'send the header "authorization: Bearer <token>"');
  try {
    const identity = await verifierFor(signIn)(token);
    if (!identity.roles.includes("admin")) return refusal(403, "only admins may read this");
    return undefined;
  } catch (error) {
    if (error instanceof InvalidTokenError) return refusal(401, error.message);
    throw error;
  }
}

function refusal(status: number, error: string): Response {
  return Response.json({ error }, { status, headers: { "cache-control": "no-store" } });
}
