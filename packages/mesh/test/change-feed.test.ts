// The change feed's guarantees, against a real PostgreSQL: revisions in commit order under
// concurrent writers whose commits are delayed out of order, every change delivered exactly once,
// a killed listener connection losing nothing, laggards served from the log, out_of_range for
// history that retention removed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  appendChanges,
  appendChangesOn,
  type ChangeFeed,
  type ChangeRecord,
  createChangeFeed,
  createLogger,
  sharedSnapshotPages,
} from "@shop/mesh";
import { createTestDatabase, type TestDatabase } from "@shop/testing";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres, { type Sql } from "postgres";

const schema = "feedtest";
const logger = createLogger("feed-test", "silent");
let database: TestDatabase;
let sql: Sql;

before(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 20, onnotice: () => {}, types: { bigint: postgres.BigInt } });
  // The same table changeLogTable() declares for the services.
  await sql.unsafe(`
    create schema ${schema};
    create table ${schema}.changes (
      revision bigint primary key, entity_id text not null, type text not null,
      data jsonb not null, partition text, commit_time timestamptz not null default now());`);
});
after(async () => {
  await sql.end();
  await database.drop();
});

const db = () => drizzle({ client: sql });

/** Appends one change per transaction; some transactions wait before committing. */
async function write(count: number, writer: number, delayEvery = 10): Promise<void> {
  for (let i = 0; i < count; i++) {
    await db().transaction(async (tx) => {
      await appendChanges(tx, schema, [
        {
          entityId: `w${writer}-${i}`,
          type: "created",
          data: { writer, i },
          partition: `p${writer % 2}`,
        },
      ]);
      // Holding the transaction open after the revision is taken is exactly the case where a
      // sequence would let a later revision commit first.
      if (i % delayEvery === 0) await sleep(Math.random() * 8);
    });
  }
}

async function collect(
  feed: ChangeFeed,
  after: bigint,
  until: number,
  options: { partition?: string } = {},
) {
  const controller = new AbortController();
  const received: ChangeRecord[] = [];
  const timer = setTimeout(() => controller.abort(), 60_000);
  try {
    for await (const batch of feed.watch({
      after,
      signal: controller.signal,
      partition: options.partition,
    })) {
      received.push(...batch.records);
      if (received.length >= until) break;
    }
    return received;
  } finally {
    clearTimeout(timer);
  }
}

function assertContiguous(records: ChangeRecord[], from: bigint): void {
  records.forEach((record, i) => {
    assert.equal(record.revision, from + BigInt(i), `record ${i} has revision ${record.revision}`);
  });
}

test("8 concurrent writers, 5,000 changes with delayed commits: one watcher gets all, in order, once", async () => {
  const feed = await createChangeFeed({ sql, schema, logger, windowSize: 1_000 });
  try {
    const start = feed.latestRevision();
    const watching = collect(feed, start, 5_000);
    await Promise.all(Array.from({ length: 8 }, (_, writer) => write(625, writer)));
    const received = await watching;
    assert.equal(received.length, 5_000);
    assertContiguous(received, start + 1n);
    const ids = new Set(received.map((record) => record.entityId));
    assert.equal(ids.size, 5_000, "no change delivered twice");
  } finally {
    await feed.close();
  }
});

test("the change log's lock and the append are sent together: the lock is not held across a round trip to the writer", async () => {
  const events: string[] = [];
  const [revision] = await sql.begin(async (tx) =>
    appendChangesOn(
      {
        unsafe: ((
          query: string,
          ...rest: Parameters<typeof tx.unsafe> extends [string, ...infer R] ? R : never
        ) => {
          const kind = query.includes("pg_advisory_xact_lock") ? "lock" : "append";
          events.push(`${kind} sent`);
          const pending = tx.unsafe(query, ...rest);
          pending.then(() => events.push(`${kind} answered`)).catch(() => {});
          return pending;
        }) as typeof tx.unsafe,
      },
      schema,
      [{ entityId: "together", type: "created", data: {} }],
    ),
  );
  assert.ok(revision && revision > 0n);
  assert.deepEqual(events, ["lock sent", "append sent", "lock answered", "append answered"]);
});

test("a watcher far behind the window reads the log and still gets every change once", async () => {
  const feed = await createChangeFeed({ sql, schema, logger, windowSize: 100 });
  try {
    const from = feed.latestRevision();
    await Promise.all(Array.from({ length: 4 }, (_, writer) => write(250, writer, 1_000)));
    // Wait until the feed has read past the window's size, so the early changes are only in the log.
    const deadline = Date.now() + 10_000;
    while (feed.latestRevision() < from + 1_000n && Date.now() < deadline) await sleep(20);
    const received = await collect(feed, from, 1_000);
    assertContiguous(received, from + 1n);
    const filtered = await collect(feed, from, 500, { partition: "p1" });
    assert.ok(filtered.every((record) => record.partition === "p1"));
    assert.equal(filtered.length, 500);
  } finally {
    await feed.close();
  }
});

test("the listener's connection is terminated during writes: nothing is lost and it reconnects", async () => {
  const feed = await createChangeFeed({ sql, schema, logger });
  try {
    const start = feed.latestRevision();
    const watching = collect(feed, start, 1_500);
    const writing = Promise.all(Array.from({ length: 3 }, (_, writer) => write(500, writer, 50)));
    const listenerPids = async () =>
      (
        await sql<{ pid: number }[]>`
          select pid from pg_stat_activity
          where datname = current_database() and query ilike ${`listen%${schema}_changes%`}`
      ).map((row) => row.pid);
    const killed: number[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(150);
      const pids = await listenerPids();
      for (const pid of pids) {
        await sql`select pg_terminate_backend(${pid})`;
        killed.push(pid);
      }
    }
    await writing;
    const received = await watching;
    assert.ok(killed.length >= 1, "the listener connection was found and terminated");
    assertContiguous(received, start + 1n);
    // The feed listens again by itself, on a new connection.
    const deadline = Date.now() + 10_000;
    let pids: number[] = [];
    while (Date.now() < deadline) {
      pids = (await listenerPids()).filter((pid) => !killed.includes(pid));
      if (pids.length > 0) break;
      await sleep(100);
    }
    assert.ok(pids.length > 0, "a new listener connection exists");
  } finally {
    await feed.close();
  }
});

test("a start revision older than the kept history is out_of_range and names the oldest", async () => {
  const feed = await createChangeFeed({
    sql,
    schema,
    logger,
    retention: { minCount: 10, minAgeMs: 0 },
  });
  try {
    await write(30, 0, 1_000);
    await feed.prune();
    const [row] = await sql<
      { oldest: bigint }[]
    >`select min(revision) as oldest from ${sql(`${schema}.changes`)}`;
    const oldest = row?.oldest ?? 0n;
    await assert.rejects(
      collect(feed, 1n, 1),
      (error: unknown) =>
        error instanceof ConnectError &&
        error.code === Code.OutOfRange &&
        error.rawMessage.includes(`oldest available is ${oldest}`),
    );
    // From just before the oldest kept change, everything is still there.
    const received = await collect(feed, oldest - 1n, 10);
    assertContiguous(received, oldest);
  } finally {
    await feed.close();
  }
});

test("an idle watch gets a first response at once and heartbeats carrying the current revision", async () => {
  const feed = await createChangeFeed({ sql, schema, logger });
  const controller = new AbortController();
  try {
    const started = Date.now();
    const stamps: number[] = [];
    for await (const batch of feed.watch({
      after: feed.latestRevision(),
      signal: controller.signal,
      heartbeatMs: 200,
    })) {
      assert.equal(batch.records.length, 0);
      assert.equal(batch.revision, feed.latestRevision());
      stamps.push(Date.now() - started);
      if (stamps.length === 3) break;
    }
    assert.ok((stamps[0] ?? Infinity) < 1_000, "first response within 1 s");
    assert.ok((stamps[2] ?? 0) >= 300, "later responses are heartbeats, not a busy loop");
  } finally {
    controller.abort();
    await feed.close();
  }
});

test("with no watch open the feed reads nothing ahead; a watch opened later still gets every change", async () => {
  // Counts the feed's reads of the log (the reader and the watches); the polls and the listener
  // go through the same connection pool but are not reads of changes.
  let reads = 0;
  const counting = new Proxy(sql, {
    apply(target, self, args: unknown[]) {
      const strings = args[0];
      if (Array.isArray(strings) && strings.join("").includes("entity_id as")) reads++;
      return Reflect.apply(target, self, args);
    },
  });
  const feed = await createChangeFeed({ sql: counting, schema, logger });
  try {
    const start = feed.latestRevision();
    await write(200, 0, 1_000);
    const deadline = Date.now() + 10_000;
    while (feed.latestRevision() < start + 200n && Date.now() < deadline) await sleep(20);
    assert.equal(feed.latestRevision(), start + 200n, "the feed heard of every change");
    assert.equal(reads, 0, "the log was read with nobody watching");

    const received = await collect(feed, start, 200);
    assertContiguous(received, start + 1n);
    assert.ok(reads > 0);

    // With a watch open, the reader reads each new change once for everyone.
    const readsBefore = reads;
    const watching = collect(feed, start + 200n, 50);
    await write(50, 1, 1_000);
    assertContiguous(await watching, start + 201n);
    assert.ok(reads > readsBefore);
  } finally {
    await feed.close();
  }
});

test("a batch of changes keeps its order and its data exactly, whatever characters it holds", async () => {
  const feed = await createChangeFeed({ sql, schema, logger });
  try {
    const start = feed.latestRevision();
    const awkward = [
      'quote " and \\ backslash',
      "{braces}, commas, 'apostrophes'",
      "ünïcödé ✓",
      "",
    ];
    const changes = awkward.map((text, i) => ({
      entityId: `batch-${i} "${text}"`,
      type: "updated" as const,
      data: { text, nested: { list: [text, i] } },
      partition: i % 2 === 0 ? null : `p "${i}"`,
    }));
    const revisions = await db().transaction((tx) => appendChanges(tx, schema, changes));
    assert.deepEqual(
      revisions,
      changes.map((_, i) => start + 1n + BigInt(i)),
    );
    const received = await collect(feed, start, changes.length);
    assert.deepEqual(
      received.map(({ entityId, type, data, partition }) => ({ entityId, type, data, partition })),
      changes,
    );
  } finally {
    await feed.close();
  }
});

test("watches at the same place get the same batch object, so that the layers above convert it once", async () => {
  const feed = await createChangeFeed({ sql, schema, logger });
  const controller = new AbortController();
  try {
    const start = feed.latestRevision();
    const firstBatch = async () => {
      for await (const batch of feed.watch({ after: start, signal: controller.signal })) {
        if (batch.records.length > 0) return batch;
      }
      throw new Error("the watch ended");
    };
    const watches = [firstBatch(), firstBatch(), firstBatch()];
    // Let every watch reach the window before anything is written.
    await sleep(100);
    await write(1, 7, 1_000);
    const [a, b, c] = await Promise.all(watches);
    assert.equal(a?.records[0]?.entityId, "w7-0");
    assert.equal(a, b);
    assert.equal(b, c);
  } finally {
    controller.abort();
    await feed.close();
  }
});

test("changesThrough: the changes of a revision range to keys up to a bound, compared as their type, in order", async () => {
  const feed = await createChangeFeed({ sql, schema, logger });
  try {
    const start = feed.latestRevision();
    // Text keys compare as the database orders text; uuids as uuids (here in the same order).
    const keys = ["MUG", "TEA", "MUG", "CUP", "ZZZ", "TEA"];
    await db().transaction((tx) =>
      appendChanges(
        tx,
        schema,
        keys.map((entityId, i) => ({
          entityId,
          type: "updated",
          data: { i },
          partition: i % 2 === 0 ? "even" : "odd",
        })),
      ),
    );
    const read = async (options: {
      after: bigint;
      upTo: bigint;
      through: string;
      partition?: string;
    }) => {
      const got: [string, number][] = [];
      for await (const batch of feed.changesThrough({ ...options, keyType: "text" })) {
        got.push(
          ...batch.records.map((r): [string, number] => [r.entityId, (r.data as { i: number }).i]),
        );
      }
      return got;
    };
    assert.deepEqual(await read({ after: start, upTo: start + 6n, through: "MUG" }), [
      ["MUG", 0],
      ["MUG", 2],
      ["CUP", 3],
    ]);
    assert.deepEqual(await read({ after: start + 1n, upTo: start + 5n, through: "TEA" }), [
      ["TEA", 1],
      ["MUG", 2],
      ["CUP", 3],
    ]);
    assert.deepEqual(
      await read({ after: start, upTo: start + 6n, through: "TEA", partition: "even" }),
      [
        ["MUG", 0],
        ["MUG", 2],
      ],
    );

    const low = "00000000-0000-4000-8000-000000000001";
    const high = "f0000000-0000-4000-8000-000000000001";
    const from = feed.latestRevision() > start + 6n ? feed.latestRevision() : start + 6n;
    await db().transaction((tx) =>
      appendChanges(tx, schema, [
        { entityId: high, type: "created", data: {} },
        { entityId: low, type: "created", data: {} },
      ]),
    );
    const uuids: string[] = [];
    for await (const batch of feed.changesThrough({
      after: from,
      upTo: from + 2n,
      through: "80000000-0000-4000-8000-000000000000",
      keyType: "uuid",
    })) {
      uuids.push(...batch.records.map((r) => r.entityId));
    }
    assert.deepEqual(uuids, [low]);
  } finally {
    await feed.close();
  }
});

test("changesThrough is out_of_range when the changes of the range are no longer in the history", async () => {
  const feed = await createChangeFeed({ sql, schema, logger });
  try {
    const start = feed.latestRevision();
    await write(3, 9, 1_000);
    await sql.unsafe(`delete from ${schema}.changes where revision <= ${start + 1n}`);
    const read = async () => {
      for await (const _ of feed.changesThrough({
        after: start,
        upTo: start + 3n,
        through: "zzz",
        keyType: "text",
      })) {
        // Nothing is expected.
      }
    };
    await assert.rejects(read(), (error: unknown) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.OutOfRange);
      return true;
    });
  } finally {
    await feed.close();
  }
});

test("readPage: a page read is kept while watches keep asking for it, and leaves once none has for a while", async () => {
  const feed = await createChangeFeed({ sql, schema, logger, pageIdleMs: 300 });
  try {
    const revision = feed.latestRevision();
    let reads = 0;
    const read = () => async () => ({ read: ++reads, revision });
    // Asked for every 100 ms for more than three times as long as it is kept when idle.
    const started = performance.now();
    while (performance.now() - started < 1_000) {
      assert.equal((await feed.readPage("page", 0n, read())).read, 1, "shared while in use");
      await sleep(100);
    }
    await sleep(600);
    assert.equal((await feed.readPage("page", 0n, read())).read, 2, "read again once left idle");
  } finally {
    await feed.close();
  }
});

test("readPage: at most snapshotReaders reads at once, in turn; watches at the same page share a read that is recent enough", async () => {
  const feed = await createChangeFeed({ sql, schema, logger, snapshotReaders: 2 });
  try {
    let running = 0;
    let most = 0;
    let reads = 0;
    const started: string[] = [];
    const read = (name: string, revision: bigint) => async () => {
      started.push(name);
      reads++;
      most = Math.max(most, ++running);
      await sleep(20);
      running--;
      return { name, revision };
    };
    const names = ["a", "b", "c", "d", "e", "f"];
    await Promise.all(names.map((name) => feed.readPage(name, 0n, read(name, 1n))));
    assert.equal(most, 2, "never more than two at once");
    assert.deepEqual(started, names, "first come, first served");

    reads = 0;
    const now = feed.latestRevision();
    const first = feed.readPage("shared", 0n, read("first", now));
    const second = feed.readPage("shared", now, read("second", now + 1n));
    assert.equal(await second, await first, "a read in progress is shared");
    const again = await feed.readPage("shared", 0n, read("third", now));
    assert.equal(again.name, "first", "a read just done is shared");
    const newer = await feed.readPage("shared", now + 1n, read("fourth", now + 1n));
    assert.equal(newer.name, "fourth", "a shared read older than the watch has is read again");
    assert.equal(reads, 2);

    // Only the pages read last are kept for late-comers.
    const base = feed.latestRevision();
    const last = sharedSnapshotPages;
    for (let i = 0; i <= last; i++) await feed.readPage(`page ${i}`, 0n, read(`first ${i}`, base));
    assert.equal(
      (await feed.readPage(`page ${last}`, 0n, read(`again ${last}`, base))).name,
      `first ${last}`,
    );
    assert.equal((await feed.readPage("page 0", 0n, read("again 0", base))).name, "again 0");
    // The one asked for again is the most recently used: the next read makes another one leave.
    assert.equal((await feed.readPage("page 2", 0n, read("again 2", base))).name, "first 2");
    await feed.readPage("one more", 0n, read("one more", base));
    assert.equal((await feed.readPage("page 2", 0n, read("again 2", base))).name, "first 2");
    assert.equal((await feed.readPage("page 3", 0n, read("again 3", base))).name, "again 3");

    // Once a newer change is known, a read done before it is not the current state any more.
    const done = await feed.readPage("stale", 0n, read("before", feed.latestRevision()));
    await write(1, 8, 1_000);
    const deadline = Date.now() + 5_000;
    while (feed.latestRevision() <= done.revision && Date.now() < deadline) await sleep(10);
    const after = await feed.readPage("stale", 0n, read("after", feed.latestRevision()));
    assert.equal(after.name, "after");
  } finally {
    await feed.close();
  }
});
