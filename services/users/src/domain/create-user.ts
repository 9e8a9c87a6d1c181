import type { NewUser, User, Users } from "./user.ts";
import { validNewUser } from "./validate.ts";

/** Creates one user after checking its trimmed name and email against the contract's rules. */
export async function createUser(users: Users, request: NewUser): Promise<User> {
  const [user] = await users.insert([validNewUser(users.rules, request)]);
  if (!user) throw new Error("insert returned no user");
  return user;
}
