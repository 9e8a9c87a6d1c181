import { randomUUID } from "node:crypto";
import { snapshotPageOf } from "@shop/mesh/watch";
import { userContractRules } from "../src/contract-rules.ts";
import { EmailTakenError, UserNotFoundError, VersionMismatchError } from "../src/domain/errors.ts";
import type {
  NewUser,
  User,
  UserEvent,
  UserEventBatch,
  UserPatch,
  UserRepository,
  Users,
} from "../src/domain/user.ts";

/** The in-memory repository plus what a test needs to look inside it or make it fail. */
export interface FakeUserRepository extends Users {
  /** Every stored user, in creation order. */
  all(): User[];
  /** The revision of the last recorded change. */
  revision(): bigint;
  /** Makes the next call of `method` throw `error` (a database that fails, say). */
  failNext(method: keyof UserRepository, error: Error): void;
}

/**
 * Keeps users and their change log in memory with the semantics the domain relies on from the
 * PostgreSQL store: all-or-nothing inserts, case-insensitive unique emails, versions that grow by
 * one per update, and a change log whose revisions grow strictly.
 */
export function createFakeUserRepository(): FakeUserRepository {
  const users: User[] = [];
  const log: UserEvent[] = [];
  const waiters = new Set<() => void>();
  const failures = new Map<keyof UserRepository, Error>();
  let clock = Date.UTC(2024, 0, 1);
  // Every write happens a second after the previous one, so timestamps differ and never go back.
  const tick = () => {
    clock += 1000;
    return new Date(clock);
  };

  const failIfAsked = (method: keyof UserRepository) => {
    const error = failures.get(method);
    if (error) {
      failures.delete(method);
      throw error;
    }
  };
  const record = (type: UserEvent["type"], user: User) => {
    log.push({ type, user: { ...user }, revision: BigInt(log.length + 1) });
    for (const wake of waiters) wake();
  };
  const emailTaken = (email: string, except?: string) =>
    users.some((user) => user.id !== except && user.email.toLowerCase() === email.toLowerCase());

  return {
    // The contract's own rules: the domain is tested against what the service enforces.
    rules: userContractRules,
    all: () => users.map((user) => ({ ...user })),
    revision: () => BigInt(log.length),
    failNext(method, error) {
      failures.set(method, error);
    },

    async insert(newUsers: readonly NewUser[]) {
      failIfAsked("insert");
      const seen = new Set<string>();
      for (const user of newUsers) {
        const key = user.email.toLowerCase();
        if (seen.has(key) || emailTaken(user.email)) throw new EmailTakenError(user.email);
        seen.add(key);
      }
      const created = newUsers.map((user): User => {
        const now = tick();
        return {
          id: randomUUID(),
          ...user,
          status: "active",
          createTime: now,
          updateTime: now,
          version: 1n,
        };
      });
      for (const user of created) {
        users.push(user);
        record("created", user);
      }
      return created.map((user) => ({ ...user }));
    },

    async get(id) {
      failIfAsked("get");
      const user = users.find((candidate) => candidate.id === id);
      return user && { ...user };
    },

    async list({ query, newestFirst, cursor, limit }) {
      failIfAsked("list");
      // A user's position in creation order stands for the store's sequence number.
      const needle = query.toLowerCase();
      const matching = users
        .map((user, index) => ({ user, seq: index + 1 }))
        .filter(
          ({ user }) =>
            user.name.toLowerCase().includes(needle) || user.email.toLowerCase().includes(needle),
        );
      if (newestFirst) matching.reverse();
      const after = cursor === undefined ? undefined : Number(cursor);
      const rest = matching.filter(
        ({ seq }) => after === undefined || (newestFirst ? seq < after : seq > after),
      );
      const page = rest.slice(0, limit);
      const last = page.at(-1);
      return {
        users: page.map(({ user }) => ({ ...user })),
        nextCursor: rest.length > limit && last ? String(last.seq) : undefined,
        revision: BigInt(log.length),
        totalSize: matching.length,
      };
    },

    async snapshotPage({ after, limit }) {
      failIfAsked("snapshotPage");
      const sorted = users
        .filter((user) => after === undefined || user.id > after)
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      const copy = (user: User) => ({ ...user });
      return snapshotPageOf(sorted, limit, BigInt(log.length), copy, (user) => user.id);
    },

    async *changesThrough({ after, upTo, through }) {
      failIfAsked("changesThrough");
      const events = log.filter(
        (event) => event.revision > after && event.revision <= upTo && event.user.id <= through,
      );
      if (events.length > 0) yield { events, revision: upTo };
    },

    async update(id, expectedVersion, patch: UserPatch) {
      failIfAsked("update");
      const user = users.find((candidate) => candidate.id === id);
      if (!user) throw new UserNotFoundError(id);
      if (user.version !== expectedVersion) {
        throw new VersionMismatchError(id, expectedVersion, user.version);
      }
      if (patch.email !== undefined && emailTaken(patch.email, id)) {
        throw new EmailTakenError(patch.email);
      }
      Object.assign(user, patch, {
        version: user.version + 1n,
        updateTime: tick(),
      });
      record("updated", user);
      return { ...user };
    },

    async *changes(after, signal): AsyncGenerator<UserEventBatch> {
      failIfAsked("changes");
      let cursor = after;
      let first = true;
      while (!signal.aborted) {
        const events = log.filter((event) => event.revision > cursor);
        if (events.length > 0 || first) {
          first = false;
          cursor = events.at(-1)?.revision ?? cursor;
          yield { events, revision: cursor };
          continue;
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            waiters.delete(done);
            signal.removeEventListener("abort", done);
            resolve();
          };
          waiters.add(done);
          signal.addEventListener("abort", done);
        });
      }
    },
  };
}
