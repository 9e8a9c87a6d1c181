import { UserNotFoundError } from "./errors.ts";
import type { User, UserPatch, Users, UserUpdate } from "./user.ts";
import { refuseViolations } from "./validate.ts";

/** Applies `patch` to the user if its version is still `expectedVersion` (optimistic concurrency). */
export async function updateUser(users: Users, request: UserUpdate): Promise<User> {
  const patch: UserPatch = {};
  if (request.patch.name !== undefined) patch.name = request.patch.name.trim();
  if (request.patch.email !== undefined) patch.email = request.patch.email.trim();
  if (request.statusGiven) patch.status = request.patch.status;
  const violations = users.rules.update({ ...request, patch });
  // No user has an id of another form.
  if (violations.some((violation) => violation.path[0] === "id")) {
    throw new UserNotFoundError(request.id);
  }
  refuseViolations(violations);
  return users.update(request.id, request.expectedVersion, patch);
}
