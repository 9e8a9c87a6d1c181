import type { UserPage, UserRepository } from "./user.ts";

/** Returns one page of users in creation order and the revision it reflects. */
export function listUsers(
  users: UserRepository,
  request: { cursor: string | undefined; limit: number },
): Promise<UserPage> {
  return users.list(request);
}
