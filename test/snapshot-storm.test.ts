// A storm of watchers asking for the current state at once: 100 WatchUsers from revision 0 on
// 20,000 users, against a users process with a hard heap limit, while users are created and
// updated and other calls keep coming. Every watcher ends up with exactly the database's state and
// then every later change once, in order; the process stays up and answers everything else
// meanwhile. A service that held each watcher's whole snapshot in memory at once (100 x 20,000
// users) would die of it under this limit.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { EventType } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createTestDatabase,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@shop/testing";
import postgres, { type Sql } from "postgres";
import { callOthers } from "../bench/scenarios/snapshot-storm.ts";

const rows = 20_000;
const watchers = 100;

let database: TestDatabase;
let sql: Sql;
let users: ServiceProcess;

before(async () => {
  database = await createTestDatabase();
  // The first start applies the migrations; the users are then added straight to the table.
  const migrating = await startServiceProcess("users", { DATABASE_URL: database.url });
  await migrating.kill();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  await sql`
    insert into users.users (name, email)
    select 'Storm ' || i, 'storm-' || i || '@example.com' from generate_series(1, ${rows}) as i`;
  users = await startServiceProcess("users", {
    DATABASE_URL: database.url,
    NODE_OPTIONS: "--max-old-space-size=192",
    MAX_WATCHES_PER_CLIENT: "1000",
  });
});
after(async () => {
  await users?.kill();
  await sql?.end();
  await database?.drop();
});

/** What one watcher saw: the state it holds and the changes that came after its snapshot. */
interface Watched {
  held: Map<string, bigint>;
  /** The revision of the last snapshot event: the state it reflects. */
  snapshotRevision: bigint;
  /** Revisions of the events after the snapshot (created, updated), in arrival order. */
  live: bigint[];
  /** The last response's revision. */
  revision: bigint;
}

async function watch(
  client: Client<typeof UserService>,
  until: () => bigint | undefined,
  snapshotDone: () => void,
  signal: AbortSignal,
): Promise<Watched> {
  const seen: Watched = { held: new Map(), snapshotRevision: 0n, live: [], revision: 0n };
  for await (const res of client.watchUsers({ startRevision: 0n }, { signal })) {
    assert.ok(res.revision >= seen.revision, "response revisions never go back");
    seen.revision = res.revision;
    for (const event of res.events) {
      const user = event.user;
      assert.ok(user);
      assert.ok(event.revision <= res.revision, "no event is ahead of its response");
      if (event.type === EventType.SNAPSHOT) {
        assert.equal(seen.live.length, 0, "no snapshot event after a live one");
        assert.ok(event.revision >= seen.snapshotRevision, "snapshot revisions never go back");
        seen.snapshotRevision = event.revision;
      } else {
        seen.live.push(event.revision);
      }
      seen.held.set(user.id, user.version);
    }
    // After the snapshot the first response comes at once (a heartbeat when nothing changed).
    const pastSnapshot = res.events.every((event) => event.type !== EventType.SNAPSHOT);
    if (pastSnapshot) snapshotDone();
    const last = until();
    if (pastSnapshot && last !== undefined && seen.revision >= last) break;
  }
  return seen;
}

test("100 watchers from revision 0 on 20,000 users under a 192 MiB heap: the whole state, then every change once, in order; other calls answered meanwhile", async () => {
  const transports: Transport[] = [
    createGrpcTransport({ baseUrl: users.url }),
    createConnectTransport({ baseUrl: users.url, httpVersion: "1.1", useBinaryFormat: true }),
  ];
  const clients = transports.map((transport) => createClient(UserService, transport));
  const client = (i: number) => clients[i % clients.length] as Client<typeof UserService>;
  // The writes come from a connection of their own, as from another client: on the watchers'
  // connection they would queue behind the flow control of streams this process reads slowly.
  const api = createClient(UserService, createGrpcTransport({ baseUrl: users.url }));
  let finalRevision: bigint | undefined;
  const stop = new AbortController();
  const giveUp = AbortSignal.any([stop.signal, AbortSignal.timeout(240_000)]);

  const snapshots: Promise<void>[] = [];
  const storm = Array.from({ length: watchers }, (_, i) => {
    const { promise, resolve } = Promise.withResolvers<void>();
    snapshots.push(promise);
    return watch(client(i), () => finalRevision, resolve, giveUp);
  });

  // Meanwhile: users created and updated (some land between the pages the watchers read), and
  // other calls that must all succeed. Those are made by a process of their own (the storm
  // scenario's probe: GetUser over gRPC, 5 ms apart, a 10 s deadline): this one decodes every
  // watcher's 20,000 users, and a reply may wait here for that work (a 5 s deadline made here was
  // missed once in CI, most likely so).
  const ids = (await sql<{ id: string }[]>`select id::text from users.users limit 20`).map(
    (row) => row.id,
  );
  const others = callOthers(users.url, ids);
  let taken: Awaited<ReturnType<typeof others.take>>;
  let results: Watched[];
  try {
    const [sample] = await sql<{ id: string }[]>`select id from users.users order by id limit 1`;
    let version = 1n;
    for (let i = 0; i < 150; i++) {
      await api.createUser({ name: `During ${i}`, email: `during-${i}@example.com` });
      if (sample && i % 3 === 0) {
        const { user } = await api.updateUser({ id: sample.id, version, name: `Renamed ${i}` });
        version = user?.version ?? version;
      }
      await sleep(20);
    }
    // Once every watcher has its snapshot, changes that can only arrive live.
    await Promise.race([Promise.all(snapshots), Promise.all(storm)]);
    for (let i = 0; i < 20; i++) {
      await api.createUser({ name: `After ${i}`, email: `after-${i}@example.com` });
    }
    const [last] = await sql<{ revision: string }[]>`
      select max(revision)::text as revision from users.changes`;
    finalRevision = BigInt(last?.revision ?? "0");

    results = await Promise.all(storm);
  } finally {
    // On a failure too: the watches, the writes and the calls beside them end.
    stop.abort();
    taken = await others.take();
    await others.stop();
  }
  const { latencies, failures } = taken;

  const truth = new Map(
    (await sql<{ id: string; version: string }[]>`select id, version::text from users.users`).map(
      (row) => [row.id, BigInt(row.version)],
    ),
  );
  const log = (
    await sql<{ revision: string }[]>`
    select revision::text as revision from users.changes order by changes.revision`
  ).map((row) => BigInt(row.revision));
  for (const [i, seen] of results.entries()) {
    assert.equal(seen.held.size, truth.size, `watcher ${i} holds every user`);
    for (const [id, expected] of truth) {
      assert.equal(seen.held.get(id), expected, `watcher ${i} holds user ${id} as it is`);
    }
    assert.deepEqual(
      seen.live,
      log.filter((revision) => revision > seen.snapshotRevision),
      `watcher ${i}: every change after its snapshot, once, in order`,
    );
  }
  assert.ok(
    results.every((seen) => seen.live.length >= 20),
    "the changes made after every snapshot arrived live",
  );
  assert.deepEqual(failures, [], "no other call failed during the storm");
  assert.ok(latencies.length > 100, `${latencies.length} other calls answered`);
  const ready = await fetch(`${users.url}/readyz`);
  assert.equal(ready.status, 200, "the capped process is still up");
});
