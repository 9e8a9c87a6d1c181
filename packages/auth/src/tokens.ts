import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from "jose";

/** Who is calling, as a verified token says. */
export interface Identity {
  /** The token's `sub`: a user id for customers, the service's name for services. */
  subject: string;
  /** The token's `roles` claim: "admin", "customer", "service". */
  roles: readonly string[];
  /** When the token stops being valid (Date.now() scale), if it says. */
  expiresAt: number | undefined;
}

/** Where the public keys come from, and what a token must say to be accepted. */
export interface VerifierOptions {
  /** A JWKS endpoint (fetched, cached and refetched on an unknown `kid` by jose). */
  jwksUrl?: string;
  /** Least time between two fetches of the endpoint, in milliseconds (default 30 s). */
  jwksCooldownMs?: number;
  /** A configured key set. */
  jwks?: JSONWebKeySet;
  issuer: string;
  audience: string;
  /** The only algorithms accepted; a token signed with any other (`none`, HS256) is refused. */
  algorithms: readonly string[];
  /** Longer tokens are refused before any parsing. */
  maxTokenBytes?: number;
  /** Leeway for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds?: number;
}

/** A token that is missing, malformed, expired, not yet valid, or signed by no trusted key. */
export class InvalidTokenError extends Error {
  override name = "InvalidTokenError";
}

/** The keys to check a token against cannot be had right now (the JWKS endpoint is down). */
export class KeysUnavailableError extends Error {
  override name = "KeysUnavailableError";
}

/**
 * Verifies a bearer token and returns who it names; throws InvalidTokenError for any bad token,
 * KeysUnavailableError when it cannot be checked now.
 */
export type Verifier = (token: string) => Promise<Identity>;

const defaultMaxTokenBytes = 8 * 1024;

/**
 * Builds a verifier with jose: the signature against the configured keys (whose type must match
 * the algorithm, so an RSA public key can never verify an HS256 token), the pinned algorithms,
 * issuer and audience, `exp` and `nbf`.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  let keys: JWTVerifyGetKey;
  if (options.jwksUrl) {
    const remote = createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
    });
    // Failing to fetch the keys says nothing about the token: the caller may try again later.
    keys = async (header, token) => {
      try {
        return await remote(header, token);
      } catch (error) {
        if (error instanceof errors.JWKSNoMatchingKey) throw error;
        if (error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        throw new KeysUnavailableError("the signing keys cannot be fetched", { cause: error });
      }
    };
  } else if (options.jwks) keys = createLocalJWKSet(options.jwks);
  else throw new Error("a verifier needs jwksUrl or jwks");
  const maxTokenBytes = options.maxTokenBytes ?? defaultMaxTokenBytes;
  return async (token) => {
    if (token.length > maxTokenBytes) {
      throw new InvalidTokenError(`token longer than ${maxTokenBytes} bytes`);
    }
    try {
      const { payload, protectedHeader } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: [...options.algorithms],
        clockTolerance: options.clockToleranceSeconds ?? 5,
        requiredClaims: ["sub", "exp"],
      });
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((role): role is string => typeof role === "string")
        : [];
      checkServiceIdentity(protectedHeader.kid, payload.sub ?? "", roles);
      return {
        subject: payload.sub ?? "",
        roles,
        expiresAt: payload.exp === undefined ? undefined : payload.exp * 1000,
      };
    } catch (error) {
      if (error instanceof KeysUnavailableError || error instanceof InvalidTokenError) throw error;
      throw new InvalidTokenError(describe(error));
    }
  };
}

const servicePrefix = "service:";

/**
 * The signer (and key id) of a service's own identity: tokens signed with a key named so may only
 * name that service, with the role "service" (see checkServiceIdentity).
 */
export function serviceSigner(service: string): string {
  return `${servicePrefix}${service}`;
}

/**
 * A service's key (key id `service:<name>`) signs only that service's identity, and only such a
 * key signs one: a service that is broken into cannot mint an admin's token, and the sign-in of
 * people cannot mint a service's.
 */
function checkServiceIdentity(kid: string | undefined, subject: string, roles: string[]): void {
  const service = kid?.startsWith(servicePrefix) ? kid.slice(servicePrefix.length) : undefined;
  if (service !== undefined) {
    if (subject !== service || roles.length !== 1 || roles[0] !== "service") {
      throw new InvalidTokenError(`key ${kid} signs only the identity of service ${service}`);
    }
  } else if (roles.includes("service")) {
    throw new InvalidTokenError("the role service is only in tokens a service signs with its key");
  }
}

/** A short reason for the client, without echoing the token back. */
function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "token expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "token not yet valid";
    return `token claim "${error.claim}" is not accepted`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "token algorithm is not accepted";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (error instanceof errors.JWKSNoMatchingKey) return "token was signed by an unknown key";
  return "malformed token";
}

/** What a new token says. */
export interface Claims {
  subject: string;
  roles: readonly string[];
}

/** Mints tokens with one private key. */
export interface Signer {
  sign(claims: Claims, ttlSeconds: number): Promise<string>;
}

/** A signer for `issuer` and `audience` with a private JWK (which carries its `kid` and `alg`). */
export async function createSigner(options: {
  privateKey: JWK;
  issuer: string;
  audience: string;
}): Promise<Signer> {
  const { privateKey } = options;
  if (!privateKey.alg || !privateKey.kid) throw new Error("the signing key needs `alg` and `kid`");
  const alg = privateKey.alg;
  const kid = privateKey.kid;
  const key = await importJWK(privateKey, alg);
  return {
    sign(claims, ttlSeconds) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ roles: [...claims.roles] })
        .setProtectedHeader({ alg, kid, typ: "JWT" })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(claims.subject)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(key);
    },
  };
}

/**
 * A service's own credentials for calls to other services: a short-lived token naming it, minted
 * with its key and renewed when half its life has passed. Concurrent callers share one renewal.
 */
export function createServiceCredentials(
  signer: Signer,
  service: string,
  ttlSeconds = 300,
): () => Promise<string> {
  let current: { token: Promise<string>; renewAt: number } | undefined;
  return () => {
    const now = Date.now();
    if (!current || now >= current.renewAt) {
      const token = signer.sign({ subject: service, roles: ["service"] }, ttlSeconds);
      current = { token, renewAt: now + (ttlSeconds * 1000) / 2 };
      token.catch(() => {
        current = undefined;
      });
    }
    return current.token;
  };
}
