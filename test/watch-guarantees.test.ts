// The watch guarantees that need a real process: resuming after the service is killed with
// SIGKILL mid-stream misses nothing and repeats nothing; slow watchers during 10,000 changes get
// every change while the server's memory stays bounded; 10,000 watches opened and cancelled leave
// no handler, listener or database connection behind.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { StatsService } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createTestDatabase,
  readMetric,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@shop/testing";
import postgres, { type Sql } from "postgres";

let database: TestDatabase;
let sql: Sql;
let users: ServiceProcess;

before(async () => {
  database = await createTestDatabase();
  // One client here opens 200 watches at once (the default cap per client is 100).
  users = await startServiceProcess("users", {
    DATABASE_URL: database.url,
    MAX_WATCHES_PER_CLIENT: "1000",
  });
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});
after(async () => {
  await users.kill();
  await sql.end();
  await database.drop();
});

const client = () => createClient(UserService, createGrpcTransport({ baseUrl: users.url }));

/** Creates users one after another, riding out restarts; returns how many exist at the end. */
async function writeUsers(count: number, prefix: string, signal?: AbortSignal): Promise<void> {
  const api = client();
  for (let i = 0; i < count && !signal?.aborted; i++) {
    for (;;) {
      try {
        await api.createUser({ name: `${prefix} ${i}`, email: `${prefix}-${i}@example.com` });
        break;
      } catch (error) {
        // A create whose answer was lost in the crash committed all the same.
        if (ConnectError.from(error).code === Code.AlreadyExists) break;
        await sleep(20);
      }
    }
  }
}

async function revisionNow(): Promise<bigint> {
  const [row] = await sql<{ revision: string }[]>`
    select coalesce(max(revision), 0)::text as revision from users.changes`;
  return BigInt(row?.revision ?? "0");
}

test("a watcher that resumes after SIGKILL and restart gets exactly the changes it missed", async () => {
  const start = await revisionNow();
  const received: bigint[] = [];
  let last = start;
  let resumed = 0;
  const writing = writeUsers(400, "resume");
  const killing = (async () => {
    await sleep(700);
    await users.kill("SIGKILL");
    await sleep(300);
    await users.restart();
  })();
  const giveUp = AbortSignal.timeout(60_000);
  const watching = (async () => {
    while (!giveUp.aborted) {
      try {
        for await (const res of client().watchUsers({ startRevision: last }, { signal: giveUp })) {
          for (const event of res.events) received.push(event.revision);
          last = res.revision;
          if (received.length >= 400) return;
        }
      } catch {
        // The stream broke with the process: resume from the last revision received.
        resumed++;
        await sleep(50);
      }
    }
  })();
  await Promise.all([writing, killing]);
  await watching;
  assert.ok(resumed >= 1, "the stream was broken by the kill and resumed");
  const expected = Array.from({ length: 400 }, (_, i) => start + BigInt(i) + 1n);
  assert.deepEqual(received, expected, "every change once, in order, none missed");
  assert.equal(await revisionNow(), start + 400n);
});

test("slow watchers during 10,000 changes get every change while server memory stays bounded", async () => {
  // A users process of its own with a hard heap limit: if it buffered what its watchers have not
  // read (40 watchers x 10,000 changes x ~400 bytes of payload alone), it would die of it.
  const capped = await startServiceProcess("users", {
    DATABASE_URL: database.url,
    NODE_OPTIONS: "--max-old-space-size=192",
  });
  const api = () => createClient(UserService, createGrpcTransport({ baseUrl: capped.url }));
  try {
    const watchers = 40;
    const changes = 10_000;
    const start = await revisionNow();
    let writing = true;
    let peakRss = 0;
    const sampling = setInterval(() => {
      readMetric(capped.url, "process_resident_memory_bytes").then(
        (value) => {
          peakRss = Math.max(peakRss, value);
        },
        () => {},
      );
    }, 250);
    const giveUp = AbortSignal.timeout(180_000);
    const slow = Array.from({ length: watchers }, async () => {
      const got: bigint[] = [];
      for await (const res of api().watchUsers({ startRevision: start }, { signal: giveUp })) {
        for (const event of res.events) got.push(event.revision);
        if (got.length >= changes) break;
        // One message a second while the changes are being made; then it catches up.
        if (writing) await sleep(1_000);
      }
      return got;
    });
    const writer = createClient(UserService, createGrpcTransport({ baseUrl: capped.url }));
    for (let batch = 0; batch < changes / 500; batch++) {
      await writer.batchCreateUsers(
        (async function* () {
          for (let i = 0; i < 500; i++) {
            yield {
              name: `slow ${batch} ${i} ${"x".repeat(150)}`,
              email: `slow-${batch}-${i}@example.com`,
            };
          }
        })(),
      );
    }
    // The watchers stay slow a while longer: time enough for a server that did not wait for its
    // readers to push everything out and run out of memory.
    await sleep(5_000);
    writing = false;
    const results = await Promise.all(slow);
    clearInterval(sampling);
    const expected = Array.from({ length: changes }, (_, i) => start + BigInt(i) + 1n);
    for (const got of results) assert.deepEqual(got, expected);
    const health = await fetch(`${capped.url}/readyz`);
    assert.equal(health.status, 200, "the capped server is still up");
    assert.ok(
      peakRss > 0 && peakRss < 400 * 1024 * 1024,
      `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
    );
  } finally {
    await capped.kill();
  }
});

test("10,000 watches opened and cancelled leave no handler, listener or connection behind", async () => {
  const stats = createClient(StatsService, createGrpcTransport({ baseUrl: users.url }));
  const activeWatches = async () => {
    for await (const res of stats.watchStats({})) {
      const method = res.methods.find((m) => m.method === "shop.user.v1.UserService/WatchUsers");
      return Number(method?.activeStreams ?? 0n);
    }
    return -1;
  };
  const connections = async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = 'shop-users'`;
    return row?.n ?? 0;
  };
  const listeners = async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and query ilike 'listen%'`;
    return row?.n ?? 0;
  };
  const feedWatches = () => readMetric(users.url, "change_feed_active_watches");
  // The baseline is a server with no watch open: earlier tests' watches may still be winding down.
  const quiet = Date.now() + 10_000;
  while ((await activeWatches()) + (await feedWatches()) > 0 && Date.now() < quiet)
    await sleep(100);
  const before = {
    watches: await activeWatches(),
    feed: await feedWatches(),
    connections: await connections(),
    listeners: await listeners(),
  };
  const from = await revisionNow();
  // Several connections, each well under the server's cap on concurrent streams, and each
  // cancelling at most 625 streams: Node's HTTP/2 server (nghttp2's defence against rapid-reset
  // attacks, CVE-2023-44487) ends a connection with GOAWAY INTERNAL_ERROR once its client has reset
  // more than 1,000 streams plus 33 per second (nodejs/node#56306), which a server answering
  // quickly lets this loop reach within a few seconds.
  const apis = Array.from({ length: 16 }, () => client());
  for (let round = 0; round < 50; round++) {
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const controller = new AbortController();
        const stream = apis[i % apis.length]?.watchUsers(
          { startRevision: from },
          { signal: controller.signal },
        );
        for await (const _res of stream ?? []) break;
        controller.abort();
      }),
    );
  }
  const deadline = Date.now() + 10_000;
  let after = { watches: -1, feed: -1, connections: -1, listeners: -1 };
  while (Date.now() < deadline) {
    after = {
      watches: await activeWatches(),
      feed: await feedWatches(),
      connections: await connections(),
      listeners: await listeners(),
    };
    if (after.watches === before.watches && after.feed === before.feed) break;
    await sleep(100);
  }
  assert.equal(after.watches, before.watches, "every watch handler ended");
  assert.equal(after.feed, before.feed, "every change-feed follower ended");
  assert.equal(after.listeners, before.listeners, "still one LISTEN connection");
  // The pool closes the connections opened for the burst once they are idle.
  const settle = Date.now() + 20_000;
  while (after.connections > before.connections && Date.now() < settle) {
    await sleep(500);
    after.connections = await connections();
  }
  assert.ok(
    after.connections <= before.connections,
    `database connections: ${before.connections} before, ${after.connections} after`,
  );
});
