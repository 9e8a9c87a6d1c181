import type { UserListing, UserPage, UserRepository } from "./user.ts";

/**
 * Returns one page of the users whose name or email contains the query (all when it is empty), in
 * creation order or newest first, with how many match and the revision it reflects.
 */
export function listUsers(users: UserRepository, listing: UserListing): Promise<UserPage> {
  return users.list(listing);
}
