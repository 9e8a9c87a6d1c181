import type { User } from "@shop/api/shop/user/v1/user_pb";
import type { LiveCollection } from "./live-collection.ts";

/** The users the pages name (an order's customer, the person signed in), without the whole list. */
export interface UserNames {
  /** The user, once fetched; asks for it the first time. Null when there is none with that id. */
  get(id: string): User | null | undefined;
  /** Tells every fetch and change of a user asked for. */
  subscribe(listener: () => void): () => void;
  /** Grows with every fetch or change, for `useSyncExternalStore`. */
  getSnapshot(): number;
}

/**
 * A cache of users by id, filled by `fetch` (GetUser) the first time a page asks for one, and kept
 * up to date by the users' changes. Its size is what the pages have asked for: an orders page of 50
 * rows asks for at most 50 users.
 */
export function createUserNames(
  fetch: (id: string) => Promise<User | null>,
  changes: LiveCollection<User>,
): UserNames & { start(): void; stop(): void } {
  const users = new Map<string, User | null | "asked">();
  const listeners = new Set<() => void>();
  let version = 0;
  let unsubscribe: (() => void) | undefined;

  function emit(): void {
    version += 1;
    for (const listener of listeners) listener();
  }

  return {
    get(id) {
      const known = users.get(id);
      if (known === "asked") return undefined;
      if (known !== undefined) return known;
      users.set(id, "asked");
      fetch(id).then(
        (user) => {
          users.set(id, user);
          emit();
        },
        // Asked again the next time a page needs it.
        () => users.delete(id),
      );
      return undefined;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => version,
    start() {
      unsubscribe ??= changes.subscribeChanges((change) => {
        if (change.kind === "lost") {
          users.clear();
          emit();
          return;
        }
        let changed = false;
        for (const entry of change.entries) {
          if (!users.has(entry.key)) continue;
          users.set(entry.key, entry.kind === "deleted" ? null : entry.item);
          changed = true;
        }
        if (changed) emit();
      });
    },
    stop() {
      unsubscribe?.();
      unsubscribe = undefined;
    },
  };
}
