// An in-memory UserService for the dashboard's tests (createRouterTransport), with switches to
// misbehave the way networks and servers do, and helpers to wait on live collections.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import {
  EventType,
  type User,
  type UserEvent,
  UserEventSchema,
  UserSchema,
} from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  type CollectionView,
  createLiveCollection,
  type LiveCollection,
} from "../../src/lib/live-collection.ts";
import { userSource } from "../../src/lib/sources.ts";

/** A UserService kept in memory, with switches to misbehave the way networks and servers do. */
export class FakeUsers {
  users = new Map<string, User>();
  log: UserEvent[] = [];
  revision = 0n;
  /** Watches from a revision below this get out_of_range. */
  oldestResumable = 0n;
  /** While true, every watch and list fails with unavailable. */
  down = false;
  /** While true, open watches send nothing at all (no heartbeats either). */
  silent = false;
  /** Snapshot batches sent before the stream breaks off; undefined: never. */
  breakSnapshotAfter: number | undefined;
  /** Runs once, after the first page of the next list has been served. */
  afterFirstPage: (() => void) | undefined;
  /** Resend this many already-delivered events when a watch resumes (a buggy server). */
  replay = 0;
  watchStarts: bigint[] = [];
  lists = 0;
  private wakers = new Set<(why: "change" | "drop" | "abort") => void>();
  private next = 1;

  create(name: string): User {
    const user = create(UserSchema, {
      id: `user-${this.next++}`,
      name,
      email: `${name.toLowerCase()}@example.com`,
      version: 1n,
    });
    this.commit(EventType.CREATED, user);
    return user;
  }

  rename(id: string, name: string): User {
    const user = this.users.get(id);
    assert.ok(user);
    const renamed = create(UserSchema, { ...user, name, version: user.version + 1n });
    this.commit(EventType.UPDATED, renamed);
    return renamed;
  }

  delete(id: string): void {
    const user = this.users.get(id);
    assert.ok(user);
    this.commit(EventType.DELETED, user);
  }

  /** Ends every open watch with an error, as when a service is stopped. */
  dropStreams(): void {
    for (const wake of [...this.wakers]) wake("drop");
  }

  private commit(type: EventType, user: User): void {
    this.revision++;
    if (type === EventType.DELETED) this.users.delete(user.id);
    else this.users.set(user.id, user);
    this.log.push(create(UserEventSchema, { type, user, revision: this.revision }));
    for (const wake of [...this.wakers]) wake("change");
  }

  private async *watch(startRevision: bigint, signal: AbortSignal) {
    if (this.down) throw new ConnectError("down", Code.Unavailable);
    this.watchStarts.push(startRevision);
    let after = startRevision;
    if (after > 0n && after < this.oldestResumable) {
      throw new ConnectError(
        `revision ${after} is compacted; the oldest is ${this.oldestResumable}`,
        Code.OutOfRange,
      );
    }
    if (after === 0n) {
      const users = [...this.users.values()];
      const revision = this.revision;
      for (let i = 0, batch = 0; i < users.length; i += 2, batch++) {
        if (this.breakSnapshotAfter !== undefined && batch >= this.breakSnapshotAfter) {
          throw new ConnectError("connection reset", Code.Unavailable);
        }
        const events = users
          .slice(i, i + 2)
          .map((user) => create(UserEventSchema, { type: EventType.SNAPSHOT, user, revision }));
        yield { events, revision };
      }
      after = revision;
    } else {
      after -= BigInt(Math.min(this.replay, Number(after)));
    }
    // The first response comes at once, changes or not, as the contract promises.
    let greeted = false;
    for (;;) {
      const events = this.log.filter((event) => event.revision > after);
      if (!this.silent && (events.length > 0 || !greeted)) {
        greeted = true;
        after = events.at(-1)?.revision ?? after;
        yield { events, revision: after };
        if (events.length > 0) continue;
      }
      const reason = await new Promise<"change" | "drop" | "abort">((resolve) => {
        const wake = (why: "change" | "drop" | "abort") => {
          this.wakers.delete(wake);
          resolve(why);
        };
        this.wakers.add(wake);
        signal.addEventListener("abort", () => wake("abort"), { once: true });
      });
      if (reason === "abort") return;
      if (reason === "drop") throw new ConnectError("connection reset", Code.Unavailable);
    }
  }

  /** ListUsers as the service pages newest first: by query, with a total and a position token. */
  private listNewestFirst(request: { query: string; pageSize: number; pageToken: string }) {
    const query = request.query.toLowerCase();
    const matching = [...this.users.values()]
      .filter(
        (user) =>
          user.name.toLowerCase().includes(query) || user.email.toLowerCase().includes(query),
      )
      .reverse();
    const start = Number(request.pageToken || "0");
    const end = start + request.pageSize;
    const page = {
      users: matching.slice(start, end),
      nextPageToken: end < matching.length ? String(end) : "",
      revision: this.revision,
      totalSize: matching.length,
    };
    const hook = this.afterFirstPage;
    this.afterFirstPage = undefined;
    hook?.();
    return page;
  }

  transport() {
    return createRouterTransport(({ service }) => {
      service(UserService, {
        listUsers: (request) => {
          if (this.down) throw new ConnectError("down", Code.Unavailable);
          this.lists++;
          if (request.newestFirst) return this.listNewestFirst(request);
          const all = [...this.users.values()];
          const start = Number(request.pageToken || "0");
          const size = 2;
          const page = {
            users: all.slice(start, start + size),
            nextPageToken: start + size < all.length ? String(start + size) : "",
            revision: this.revision,
          };
          const hook = this.afterFirstPage;
          this.afterFirstPage = undefined;
          hook?.();
          return page;
        },
        watchUsers: (request, context) => this.watch(request.startRevision, context.signal),
      });
    });
  }
}

export const fast = {
  highlightMs: 200,
  stream: { backoff: { initialMs: 5, maxMs: 20 }, offlineAfter: 3, idleTimeoutMs: 2_000 },
};

export function open(fake: FakeUsers, options = fast): LiveCollection<User> {
  const collection = createLiveCollection(
    userSource(createClient(UserService, fake.transport())),
    options,
  );
  collection.start();
  return collection;
}

export async function until<T>(
  collection: LiveCollection<T>,
  check: (view: CollectionView<T>) => boolean,
  message: string,
  timeoutMs = 2_000,
): Promise<CollectionView<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = collection.getSnapshot();
    if (check(view)) return view;
    if (Date.now() > deadline) {
      assert.fail(`timed out: ${message} (status ${view.status}, ${view.items.size} items)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const names = (view: CollectionView<User>) =>
  [...view.items.values()].map((u) => u.name).sort();
