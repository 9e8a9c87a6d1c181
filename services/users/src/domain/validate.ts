import { describeViolations, fieldsFirst, type RuleViolation } from "@shop/mesh/rule-violation";
import { InvalidUserError } from "./errors.ts";
import type { NewUser, UserRules } from "./user.ts";

// Every rule of a field lives in the contract (proto/shop/user/v1, shop.rules.v1) and reaches the
// domain through UserRules; what is left here is the domain's own part: names and emails are
// stored trimmed, and a broken rule is an InvalidUserError naming the field.

/** Returns the user to create with its fields trimmed, or throws InvalidUserError. */
export function validNewUser(rules: UserRules, user: NewUser): NewUser {
  const trimmed = { name: user.name.trim(), email: user.email.trim() };
  refuseViolations(rules.newUser(trimmed));
  return trimmed;
}

/** Throws InvalidUserError naming the first field that breaks a rule and every rule broken. */
export function refuseViolations(violations: readonly RuleViolation[]): void {
  const [first, ...rest] = fieldsFirst(violations);
  if (first === undefined) return;
  throw new InvalidUserError(String(first.path[0] ?? ""), describeViolations([first, ...rest]));
}
