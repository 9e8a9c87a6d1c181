// Who the dashboard acts as, shared by the sign-in route (which checks it before signing) and the
// page (which checks the sign-in form before sending it).
import { isUserId } from "./validation.ts";

/** The admin, who sees and does everything; or a customer, who sees and places only their orders. */
export type Identity = { role: "admin" } | { role: "customer"; userId: string };

/** What POST /api/session answers: a token for `identity`, valid for `expiresInSeconds`. */
export interface SessionGrant {
  identity: Identity;
  token: string;
  expiresInSeconds: number;
}

/** Reads an identity from untrusted JSON: the identity, or what is wrong with it. */
export function parseIdentity(value: unknown): { identity: Identity } | { problem: string } {
  if (typeof value !== "object" || value === null) return { problem: "send a JSON object" };
  const { role, userId } = value as { role?: unknown; userId?: unknown };
  if (role === "admin") return { identity: { role } };
  if (role === "customer") {
    if (typeof userId !== "string" || !isUserId(userId)) {
      return { problem: "userId must be a user id (a UUID)" };
    }
    return { identity: { role, userId: userId.toLowerCase() } };
  }
  return { problem: 'role must be "admin" or "customer"' };
}

/** The claims a token of `identity` carries: an admin's subject is "admin", a customer's their id. */
export function claimsOf(identity: Identity): { subject: string; roles: string[] } {
  return identity.role === "admin"
    ? { subject: "admin", roles: ["admin"] }
    : { subject: identity.userId, roles: ["customer"] };
}

/** True when two identities name the same caller. */
export function sameIdentity(a: Identity, b: Identity): boolean {
  return claimsOf(a).subject === claimsOf(b).subject && a.role === b.role;
}
