import type { NewUser, User, UserRepository } from "./user.ts";
import { validNewUser } from "./validate.ts";

/** Creates one user after validating its name and email. */
export async function createUser(users: UserRepository, request: NewUser): Promise<User> {
  const [user] = await users.insert([validNewUser(request)]);
  if (!user) throw new Error("insert returned no user");
  return user;
}
