// Snapshot pages kept for the watchers that come after: once a page has gone out in protobuf, the
// service keeps the response it became, encoded, instead of its rows and messages (see
// compactPage). A watcher that asks for the page later gets those bytes over any protocol, or JSON
// made from them, and must see exactly what the first watcher saw and what the database holds.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { toJson } from "@bufbuild/protobuf";
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { EventType, UserSchema } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService } from "@shop/mesh";
import { defaultSnapshotPageSize } from "@shop/mesh/watch";
import { createTestDatabase, readMetric, startTestService, type TestDatabase } from "@shop/testing";
import postgres from "postgres";
import { usersService } from "../services/users/src/app.ts";

// Three pages of the default size: two full, one not.
const rows = Math.floor(2.5 * defaultSnapshotPageSize);
const pageCount = 3;

let database: TestDatabase;
let users: RunningService;

before(async () => {
  database = await createTestDatabase();
  users = await startTestService(usersService, database.url);
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  await sql`
    insert into users.users (name, email)
    select 'Kept ' || i, 'kept-' || i || '@example.com' from generate_series(1, ${rows}) as i`;
  await sql.end();
});
after(async () => {
  await users?.stop(100);
  await database?.drop();
});

/** The snapshot one watcher from revision 0 gets: each user as JSON, by id, in arrival order. */
async function snapshotOver(transport: Transport): Promise<Map<string, unknown>> {
  const client = createClient(UserService, transport);
  const stop = new AbortController();
  const held = new Map<string, unknown>();
  try {
    for await (const res of client.watchUsers(
      { startRevision: 0n },
      { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(20_000)]) },
    )) {
      const snapshot = res.events.filter((event) => event.type === EventType.SNAPSHOT);
      // The first response after the snapshot has no snapshot event (a heartbeat here).
      if (snapshot.length === 0 && held.size > 0) break;
      for (const event of snapshot) {
        assert.ok(event.user, "a snapshot event carries its user");
        held.set(event.user.id, toJson(UserSchema, event.user));
      }
    }
  } finally {
    stop.abort();
  }
  return held;
}

const pagesFrom = (source: string) =>
  readMetric(users.server.url, "change_feed_snapshot_pages_total", { schema: "users", source });

test("watchers after the first get the pages kept as their encoding, over every protocol and in JSON, and see the same state as the first and as the database", async () => {
  const readBefore = await pagesFrom("read");
  const encodedBefore = await pagesFrom("encoded");

  const first = await snapshotOver(createGrpcTransport({ baseUrl: users.server.url }));
  assert.equal(first.size, rows, "the first watcher has every user");
  const later = {
    "Connect JSON over HTTP/1.1": createConnectTransport({
      baseUrl: users.server.url,
      httpVersion: "1.1",
      useBinaryFormat: false,
    }),
    "Connect binary over HTTP/2": createConnectTransport({
      baseUrl: users.server.url,
      httpVersion: "2",
      useBinaryFormat: true,
    }),
    "gRPC-web over HTTP/1.1": createGrpcWebTransport({
      baseUrl: users.server.url,
      httpVersion: "1.1",
    }),
    gRPC: createGrpcTransport({ baseUrl: users.server.url }),
    // A browser's request (it names its origin) is served by connect-es, whose serializer reads
    // the message's fields: decoded from the kept bytes.
    "Connect JSON over HTTP/2 from a browser's origin": createConnectTransport({
      baseUrl: users.server.url,
      httpVersion: "2",
      useBinaryFormat: false,
      interceptors: [
        (next) => (req) => {
          req.header.set("origin", "http://localhost:3000");
          return next(req);
        },
      ],
    }),
  };
  for (const [name, transport] of Object.entries(later)) {
    const seen = await snapshotOver(transport);
    assert.deepEqual(seen, first, `${name}: the same users, fields and order as the first watcher`);
  }

  // Each page was read from the database once; every later watcher got it as kept bytes.
  assert.equal((await pagesFrom("read")) - readBefore, pageCount, "each page read once");
  assert.equal(
    (await pagesFrom("encoded")) - encodedBefore,
    pageCount * Object.keys(later).length,
    "every later watcher's pages came from the kept encodings",
  );

  // And what they all saw is the database's state.
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    const stored = await sql<{ id: string; email: string; version: string }[]>`
      select id, email, version::text as version from users.users order by id`;
    assert.deepEqual(
      [...first.values()].map((user) => {
        const { id, email, version } = user as { id: string; email: string; version: string };
        return { id, email, version };
      }),
      stored.map(({ id, email, version }) => ({ id, email, version })),
    );
  } finally {
    await sql.end();
  }
});

test("a page that went out in JSON alone stays kept as read until a binary watcher sends it, then as its encoding; a user created before is in every snapshot", async () => {
  const client = createClient(UserService, createGrpcTransport({ baseUrl: users.server.url }));
  await client.createUser({ name: "After", email: "after@example.com" });
  // Past the time pages are kept (5 s), and past the feed's poll (1 s), so the service knows of
  // the write and keeps nothing from the test before.
  await sleep(5_500);
  const json = createConnectTransport({
    baseUrl: users.server.url,
    httpVersion: "1.1",
    useBinaryFormat: false,
  });
  const before = {
    read: await pagesFrom("read"),
    shared: await pagesFrom("shared"),
    encoded: await pagesFrom("encoded"),
  };
  const first = await snapshotOver(json);
  assert.equal(first.size, rows + 1, "the JSON watcher has every user, the new one too");
  assert.equal((await pagesFrom("read")) - before.read, pageCount, "each page read again");
  // Only JSON went out: the pages are shared as read with the next watcher, who encodes them.
  const binary = await snapshotOver(createGrpcTransport({ baseUrl: users.server.url }));
  assert.deepEqual(binary, first);
  assert.equal((await pagesFrom("shared")) - before.shared, pageCount, "kept as read");
  assert.equal((await pagesFrom("encoded")) - before.encoded, 0);
  // From then on they are kept as their encoding, and JSON is made from it.
  const again = await snapshotOver(json);
  assert.deepEqual(again, first);
  assert.equal((await pagesFrom("encoded")) - before.encoded, pageCount, "then as encoded");
  assert.equal((await pagesFrom("read")) - before.read, pageCount, "and not read again");
});
