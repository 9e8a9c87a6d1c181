import { BatchItemError, BatchTooLargeError, EmailTakenError } from "./errors.ts";
import type { NewUser, User, Users } from "./user.ts";
import { validNewUser } from "./validate.ts";

/** Most users one batch may create. */
export const maxBatchSize = 10_000;

/**
 * Creates every user of the stream in one transaction, or none. A failure names the index (from 0)
 * of the message that caused it.
 */
export async function batchCreateUsers(
  users: Users,
  requests: AsyncIterable<NewUser>,
): Promise<User[]> {
  const batch: NewUser[] = [];
  const indexByEmail = new Map<string, number>();
  for await (const request of requests) {
    const index = batch.length;
    if (index >= maxBatchSize) throw new BatchTooLargeError(maxBatchSize);
    let user: NewUser;
    try {
      user = validNewUser(users.rules, request);
    } catch (error) {
      throw new BatchItemError(index, error as Error);
    }
    const key = user.email.toLowerCase();
    if (indexByEmail.has(key)) {
      throw new BatchItemError(index, new EmailTakenError(user.email));
    }
    indexByEmail.set(key, index);
    batch.push(user);
  }
  if (batch.length === 0) return [];
  try {
    return await users.insert(batch);
  } catch (error) {
    if (error instanceof EmailTakenError) {
      const index = indexByEmail.get(error.email.toLowerCase());
      if (index !== undefined) throw new BatchItemError(index, error);
    }
    throw error;
  }
}
