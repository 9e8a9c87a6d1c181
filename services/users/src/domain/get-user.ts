import { UserNotFoundError } from "./errors.ts";
import type { User, UserRepository } from "./user.ts";

/** Returns the user with `id`, or throws UserNotFoundError. */
export async function getUser(users: UserRepository, id: string): Promise<User> {
  const user = await users.get(id);
  if (!user) throw new UserNotFoundError(id);
  return user;
}
