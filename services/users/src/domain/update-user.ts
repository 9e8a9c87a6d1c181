import { InvalidUserError, UserNotFoundError } from "./errors.ts";
import type { User, UserPatch, UserRepository } from "./user.ts";
import { isUserId, validEmail, validName, validStatus } from "./validate.ts";

/** Applies `patch` to the user if its version is still `expectedVersion` (optimistic concurrency). */
export async function updateUser(
  users: UserRepository,
  request: { id: string; expectedVersion: bigint; patch: UserPatch; statusGiven: boolean },
): Promise<User> {
  if (!isUserId(request.id)) throw new UserNotFoundError(request.id);
  if (request.expectedVersion <= 0n) {
    throw new InvalidUserError("version", "version must be the user's current version (1 or more)");
  }
  const patch: UserPatch = {};
  if (request.patch.name !== undefined) patch.name = validName(request.patch.name);
  if (request.patch.email !== undefined) patch.email = validEmail(request.patch.email);
  if (request.statusGiven) patch.status = validStatus(request.patch.status);
  return users.update(request.id, request.expectedVersion, patch);
}
