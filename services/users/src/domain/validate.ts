import { InvalidUserError } from "./errors.ts";
import type { NewUser, UserStatus } from "./user.ts";

const maxNameLength = 200;
const maxEmailLength = 254;
// Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not checked.
const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Returns the trimmed name, or throws InvalidUserError. */
export function validName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === "") throw new InvalidUserError("name", "name must not be empty");
  if (trimmed.length > maxNameLength) {
    throw new InvalidUserError("name", `name must be at most ${maxNameLength} characters`);
  }
  if (controlCharacter.test(trimmed)) {
    throw new InvalidUserError("name", "name must not contain control characters");
  }
  return trimmed;
}

// C0 and C1 controls (NUL among them, which PostgreSQL text cannot store) and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;

/** Returns the trimmed email, or throws InvalidUserError. */
export function validEmail(email: string): string {
  const trimmed = email.trim();
  if (
    trimmed.length > maxEmailLength ||
    !emailPattern.test(trimmed) ||
    controlCharacter.test(trimmed)
  ) {
    throw new InvalidUserError("email", `email "${trimmed.slice(0, 80)}" is not a valid address`);
  }
  return trimmed;
}

/** Returns the user to create with its fields normalised, or throws InvalidUserError. */
export function validNewUser(user: NewUser): NewUser {
  return { name: validName(user.name), email: validEmail(user.email) };
}

/** Returns the status, or throws InvalidUserError for an unset one. */
export function validStatus(status: UserStatus | undefined): UserStatus {
  if (status === undefined)
    throw new InvalidUserError("status", "status must be ACTIVE or SUSPENDED");
  return status;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `id` has the form of a user id; other ids cannot exist. */
export function isUserId(id: string): boolean {
  return uuidPattern.test(id);
}
