// The one user every in-memory peer answers GetUser with, and the store that holds it. Only types
// are imported, so that a peer loading this loads nothing of ours.
import type { User, UserRepository } from "../../services/users/src/domain/user.ts";

/** The user of the in-memory store, the same in every server of the unary scenarios. */
export const fixtureUser: User = {
  id: "5f0c7a9e-2b1d-4c3e-9a8f-1e2d3c4b5a69",
  name: "Ada Lovelace",
  email: "ada.lovelace@example.com",
  status: "active",
  createTime: new Date("2024-01-01T09:30:00.000Z"),
  updateTime: new Date("2024-01-02T17:45:12.345Z"),
  version: 1n,
};

/**
 * A UserRepository that holds `users` in a Map: what the in-memory rows of the unary scenarios
 * serve, so that they compare serving paths and not databases. Only reads are supported.
 */
export function createMemoryUserRepository(users: readonly User[] = [fixtureUser]): UserRepository {
  const byId = new Map(users.map((user) => [user.id, user]));
  const unsupported = () => Promise.reject(new Error("the benchmark's in-memory store only reads"));
  return {
    get: async (id) => byId.get(id),
    insert: unsupported,
    list: unsupported,
    snapshotPage: unsupported,
    changesThrough() {
      throw new Error("the benchmark's in-memory store has no change feed");
    },
    update: unsupported,
    changes() {
      throw new Error("the benchmark's in-memory store has no change feed");
    },
  };
}
