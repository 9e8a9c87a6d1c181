// The dashboard's session without a browser: signing in, keeping the session across a reload,
// renewing the token before it expires, replacing a token the services refuse, and a live watch
// whose token expires mid-stream, against an in-memory UserService (createRouterTransport) that
// checks bearer tokens and ends a stream with unauthenticated when its token expires, as the
// services do: the watch renews, reconnects at once and resumes from its last revision.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type HandlerContext,
} from "@connectrpc/connect";
import {
  EventType,
  type UserEvent,
  UserEventSchema,
  UserSchema,
} from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createBearerInterceptor } from "../src/lib/bearer.ts";
import type { Identity, SessionGrant } from "../src/lib/identity.ts";
import { createLiveCollection } from "../src/lib/live-collection.ts";
import { createSessionStore, type SessionStore } from "../src/lib/session.ts";
import { userSource } from "../src/lib/sources.ts";

/** The dashboard's sign-in route, in memory: numbered tokens with a lifetime the test sets. */
class FakeSignIn {
  grants: { identity: Identity; token: string }[] = [];
  ttlSeconds = 60;
  /** While set, every request fails with this message. */
  failing: string | undefined;

  request = async (identity: Identity): Promise<SessionGrant> => {
    if (this.failing) throw new Error(this.failing);
    const token = `token-${this.grants.length + 1}`;
    this.grants.push({ identity, token });
    return { identity, token, expiresInSeconds: this.ttlSeconds };
  };
}

function memoryStorage() {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
    removeItem: (key: string) => void items.delete(key),
  };
}

const admin: Identity = { role: "admin" };
const customer: Identity = { role: "customer", userId: "0b6f2c1e-5d4a-4f8e-9a37-2c1d5e6f7a8b" };

async function until(check: () => boolean, message: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("signs in, keeps the session across a reload of the tab, and signs out", async () => {
  const signIn = new FakeSignIn();
  const storage = memoryStorage();
  const first = createSessionStore({ enabled: true, requestToken: signIn.request, storage });
  assert.deepEqual(first.getSnapshot(), { status: "restoring" }, "nothing is known before start");
  first.start();
  assert.deepEqual(first.getSnapshot(), { status: "signed-out", error: undefined });
  assert.equal(await first.token(), undefined, "no token while signed out");

  assert.equal(await first.signIn(customer), true);
  assert.deepEqual(first.getSnapshot(), { status: "signed-in", identity: customer });
  assert.equal(await first.token(), "token-1");
  first.stop();

  // The reloaded page: a new store on the same storage, signed in without asking again.
  const reloaded = createSessionStore({ enabled: true, requestToken: signIn.request, storage });
  reloaded.start();
  assert.deepEqual(reloaded.getSnapshot(), { status: "signed-in", identity: customer });
  assert.equal(await reloaded.token(), "token-1");
  assert.equal(signIn.grants.length, 1, "the kept token is used");

  reloaded.signOut();
  reloaded.stop();
  assert.deepEqual(reloaded.getSnapshot(), { status: "signed-out", error: undefined });
  assert.equal(await reloaded.token(), undefined);
  assert.equal(storage.items.size, 0, "nothing is kept after signing out");
});

/**
 * Tabs of one browser: one storage, whose changes by one tab reach the others (as the window's
 * `storage` event does, which the tab that made the change does not get).
 */
function browserTabs() {
  const storage = memoryStorage();
  const tabs = new Set<() => void>();
  return {
    storage,
    /** The storage as one tab sees it: its writes notify the other tabs. */
    tab() {
      let own: (() => void) | undefined;
      const notifyOthers = () => {
        for (const changed of tabs) if (changed !== own) changed();
      };
      return {
        storage: {
          getItem: storage.getItem,
          setItem(key: string, value: string) {
            const before = storage.getItem(key);
            storage.setItem(key, value);
            if (before !== value) notifyOthers();
          },
          removeItem(key: string) {
            const before = storage.getItem(key);
            storage.removeItem(key);
            if (before !== null) notifyOthers();
          },
        },
        watchStorage(changed: () => void) {
          own = changed;
          tabs.add(changed);
          return () => tabs.delete(changed);
        },
      };
    },
  };
}

test("tabs share the session: a tab opened later is signed in, and a renewal or sign-out in one reaches the others", async () => {
  const signIn = new FakeSignIn();
  const browser = browserTabs();
  const first = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    ...browser.tab(),
  });
  const second = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    ...browser.tab(),
  });
  first.start();
  second.start();
  assert.deepEqual(second.getSnapshot(), { status: "signed-out", error: undefined });

  assert.equal(await first.signIn(admin), true);
  assert.deepEqual(second.getSnapshot(), { status: "signed-in", identity: admin });
  assert.equal(await second.token(), "token-1", "the other tab takes the same token");

  // A link opened in a new tab: signed in, without asking again.
  const third = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    ...browser.tab(),
  });
  third.start();
  assert.deepEqual(third.getSnapshot(), { status: "signed-in", identity: admin });
  assert.equal(await third.token(), "token-1");
  assert.equal(signIn.grants.length, 1);

  // A token the services refuse is replaced in one tab; the others take the new one.
  first.refused("token-1");
  assert.equal(await first.token(), "token-2");
  assert.equal(await second.token(), "token-2");
  assert.equal(await third.token(), "token-2");
  assert.equal(signIn.grants.length, 2, "one renewal for all tabs");

  // Viewing as a customer in one tab switches the others.
  assert.equal(await second.signIn(customer), true);
  assert.deepEqual(first.getSnapshot(), { status: "signed-in", identity: customer });
  assert.equal(await first.token(), "token-3");

  third.signOut();
  for (const tab of [first, second, third]) {
    assert.deepEqual(tab.getSnapshot(), { status: "signed-out", error: undefined });
    assert.equal(await tab.token(), undefined);
  }
  for (const tab of [first, second, third]) tab.stop();
});

test("without a signing key, the session is off and no token is asked for", async () => {
  const signIn = new FakeSignIn();
  const session = createSessionStore({ enabled: false, requestToken: signIn.request });
  session.start();
  assert.deepEqual(session.getSnapshot(), { status: "off" });
  assert.deepEqual(session.getServerSnapshot(), { status: "off" });
  assert.equal(await session.signIn(admin), false);
  assert.equal(await session.token(), undefined);
  assert.equal(signIn.grants.length, 0);
});

test("a refused sign-in says why; an expired kept session signs the same identity in again", async () => {
  const signIn = new FakeSignIn();
  const storage = memoryStorage();
  signIn.failing = "userId must be a user id (a UUID)";
  const session = createSessionStore({ enabled: true, requestToken: signIn.request, storage });
  session.start();
  assert.equal(await session.signIn(customer), false);
  assert.deepEqual(session.getSnapshot(), {
    status: "signed-out",
    error: "Could not sign in: userId must be a user id (a UUID)",
  });

  signIn.failing = undefined;
  let clock = 1_000_000;
  const now = () => clock;
  const earlier = createSessionStore({ enabled: true, requestToken: signIn.request, storage, now });
  earlier.start();
  await earlier.signIn(customer);
  earlier.stop();
  clock += 61_000;
  const later = createSessionStore({ enabled: true, requestToken: signIn.request, storage, now });
  later.start();
  assert.deepEqual(later.getSnapshot(), { status: "restoring" }, "renewing before showing pages");
  await until(() => later.getSnapshot().status === "signed-in", "signed in again");
  assert.deepEqual(later.getSnapshot(), { status: "signed-in", identity: customer });
  assert.equal(await later.token(), "token-2");
  later.stop();
});

test("renews the token before it expires: concurrent calls share one renewal, and a failed renewal keeps the token while it is valid", async () => {
  const signIn = new FakeSignIn();
  let clock = 1_000_000;
  const session = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    storage: memoryStorage(),
    now: () => clock,
  });
  // Not started: no renewal timer, so only calls renew.
  await session.signIn(admin);
  assert.equal(await session.token(), "token-1");
  clock += 44_000;
  assert.equal(await session.token(), "token-1", "well within its life");
  clock += 1_500; // 15 s left of 60: less than a quarter
  const tokens = await Promise.all([session.token(), session.token(), session.token()]);
  assert.deepEqual(tokens, ["token-2", "token-2", "token-2"]);
  assert.equal(signIn.grants.length, 2, "one renewal for three calls");

  clock += 50_000;
  signIn.failing = "the dashboard's server is restarting";
  assert.equal(await session.token(), "token-2", "still valid for 10 s: used while renewal fails");
  clock += 10_000;
  await assert.rejects(session.token(), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.Unavailable);
    assert.match(error.rawMessage, /could not be renewed: the dashboard's server is restarting/);
    return true;
  });
  signIn.failing = undefined;
  assert.equal(await session.token(), "token-3", "renewed once the server answers");
});

test("renews on a timer a quarter of the token's life before it expires", async () => {
  const signIn = new FakeSignIn();
  signIn.ttlSeconds = 0.4;
  const session = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    storage: memoryStorage(),
  });
  session.start();
  try {
    await session.signIn(admin);
    const signedInAt = Date.now();
    await until(() => signIn.grants.length === 2, "renewed", 1_000);
    const after = Date.now() - signedInAt;
    assert.ok(after >= 250, `renewed after ${after} ms, when a quarter of its 400 ms was left`);
    assert.equal(await session.token(), "token-2");
  } finally {
    session.stop();
  }
});

test("the interceptor sends the token, and a token the services refuse is replaced on the next call", async () => {
  const signIn = new FakeSignIn();
  const session = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    storage: memoryStorage(),
  });
  await session.signIn(admin);
  const seen: string[] = [];
  let refuse = true;
  const transport = createRouterTransport(
    ({ service }) => {
      service(UserService, {
        getUser(_request, context) {
          const header = context.requestHeader.get("authorization") ?? "";
          seen.push(header);
          if (refuse) throw new ConnectError("token signature is invalid", Code.Unauthenticated);
          return { user: create(UserSchema, { id: "u1", name: "Ada" }) };
        },
      });
    },
    { transport: { interceptors: [createBearerInterceptor(session)] } },
  );
  const client = createClient(UserService, transport);
  await assert.rejects(client.getUser({ id: "u1" }), { code: Code.Unauthenticated });
  refuse = false;
  const { user } = await client.getUser({ id: "u1" });
  assert.equal(user?.name, "Ada");
  assert.deepEqual(seen, ["Bearer token-1", "Bearer token-2"]);
});

/**
 * A UserService in memory that takes only the tokens `valid` holds, and ends every watch with
 * unauthenticated when the token that opened it expires, as the mesh runtime does.
 */
class AuthenticatingUsers {
  /** Token → when it expires (Date.now() scale). */
  valid = new Map<string, number>();
  log: UserEvent[] = [];
  revision = 0n;
  watches: { token: string; startRevision: bigint }[] = [];
  private wakers = new Set<() => void>();

  create(name: string): void {
    this.revision++;
    const user = create(UserSchema, { id: `user-${this.revision}`, name, version: 1n });
    this.log.push(
      create(UserEventSchema, { type: EventType.CREATED, user, revision: this.revision }),
    );
    for (const wake of [...this.wakers]) wake();
  }

  private authenticate(context: HandlerContext): { token: string; expiresAt: number } {
    const token = /^Bearer (\S+)$/.exec(context.requestHeader.get("authorization") ?? "")?.[1];
    const expiresAt = token === undefined ? undefined : this.valid.get(token);
    if (token === undefined || expiresAt === undefined || expiresAt <= Date.now()) {
      throw new ConnectError("token expired or unknown", Code.Unauthenticated);
    }
    return { token, expiresAt };
  }

  private async *watch(startRevision: bigint, context: HandlerContext) {
    const { token, expiresAt } = this.authenticate(context);
    this.watches.push({ token, startRevision });
    let after = startRevision;
    if (after === 0n) {
      const events = this.log.map((event) =>
        create(UserEventSchema, { ...event, type: EventType.SNAPSHOT, revision: this.revision }),
      );
      after = this.revision;
      yield { events, revision: after };
    } else {
      yield { events: [], revision: after };
    }
    for (;;) {
      const events = this.log.filter((event) => event.revision > after);
      if (events.length > 0) {
        after = events.at(-1)?.revision ?? after;
        yield { events, revision: after };
        continue;
      }
      const why = await new Promise<"change" | "expired" | "abort">((resolve) => {
        const timer = setTimeout(() => done("expired"), expiresAt - Date.now());
        const done = (reason: "change" | "expired" | "abort") => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve(reason);
        };
        const wake = () => done("change");
        this.wakers.add(wake);
        context.signal.addEventListener("abort", () => done("abort"), { once: true });
      });
      if (why === "abort") return;
      if (why === "expired") throw new ConnectError("token expired", Code.Unauthenticated);
    }
  }

  transport(session: SessionStore) {
    return createRouterTransport(
      ({ service }) => {
        service(UserService, {
          watchUsers: (request, context) => this.watch(request.startRevision, context),
        });
      },
      { transport: { interceptors: [createBearerInterceptor(session)] } },
    );
  }
}

async function expiringWatch(options: { serverLifetimeMs: number; grantedSeconds: number }) {
  const server = new AuthenticatingUsers();
  const signIn = new FakeSignIn();
  signIn.ttlSeconds = options.grantedSeconds;
  const issue = signIn.request;
  // The services take each token for `serverLifetimeMs`, whatever the grant says.
  signIn.request = async (identity) => {
    const grant = await issue(identity);
    server.valid.set(grant.token, Date.now() + options.serverLifetimeMs);
    return grant;
  };
  const session = createSessionStore({
    enabled: true,
    requestToken: signIn.request,
    storage: memoryStorage(),
  });
  session.start();
  await session.signIn(admin);
  server.create("Ada");
  const users = createLiveCollection(
    userSource(createClient(UserService, server.transport(session))),
    {
      stream: { backoff: { initialMs: 2_000, maxMs: 2_000 }, idleTimeoutMs: 5_000 },
    },
  );
  const statuses = new Set<string>();
  users.subscribe(() => statuses.add(users.getSnapshot().status));
  users.start();
  try {
    await until(() => users.getSnapshot().status === "live", "live");
    // Changes spread over several token lifetimes, some right at an expiry.
    const names: string[] = [];
    const deadline = Date.now() + options.serverLifetimeMs * 3.5;
    while (Date.now() < deadline) {
      const name = `User ${names.length + 1}`;
      server.create(name);
      names.push(name);
      await new Promise((resolve) => setTimeout(resolve, options.serverLifetimeMs / 5));
    }
    // A drop waiting out the 2 s backoff would take longer than this.
    await until(() => users.getSnapshot().items.size === names.length + 1, "every change", 1_500);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const view = users.getSnapshot();
    assert.deepEqual(
      view.activity.map((entry) => entry.item.name).sort(),
      [...names].sort(),
      "each change once in the feed",
    );
    assert.equal(view.revision, server.revision);
    assert.ok(server.watches.length >= 3, `reconnected: ${server.watches.length} watches`);
    const [first, ...resumed] = server.watches;
    assert.equal(first?.startRevision, 0n);
    assert.ok(
      resumed.every((watch) => watch.startRevision > 0n),
      `every reconnect resumed from a revision: ${resumed.map((w) => w.startRevision).join(", ")}`,
    );
    const tokens = server.watches.map((watch) => watch.token);
    assert.equal(new Set(tokens).size, tokens.length, "each reconnect carried a new token");
    assert.deepEqual(
      [...statuses].filter((status) => status !== "live" && status !== "connecting"),
      [],
      "never shown as dropped",
    );
  } finally {
    users.stop();
    session.stop();
  }
}

test("a watch whose token expires renews it, reconnects at once and resumes from its last revision: nothing missed or doubled", async () => {
  await expiringWatch({ serverLifetimeMs: 400, grantedSeconds: 0.4 });
});

test("a token the services stop taking before the page expects it is replaced when the stream reconnects", async () => {
  // The grant says a minute (no renewal is due), but the services end each stream after 400 ms.
  await expiringWatch({ serverLifetimeMs: 400, grantedSeconds: 60 });
});
