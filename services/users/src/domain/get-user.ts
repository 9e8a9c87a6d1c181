import { UserNotFoundError } from "./errors.ts";
import type { User, UserRepository } from "./user.ts";
import { isUserId } from "./validate.ts";

/** Returns the user with `id`, or throws UserNotFoundError. */
export async function getUser(users: UserRepository, id: string): Promise<User> {
  const user = isUserId(id) ? await users.get(id) : undefined;
  if (!user) throw new UserNotFoundError(id);
  return user;
}
