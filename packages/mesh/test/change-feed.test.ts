// The change log and its feed over a real PostgreSQL: revisions in commit order, watches that see
// every committed change once, and a feed that survives lost notifications and pruned history.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createTestDatabase, type TestDatabase, waitFor } from "@shop/testing";
import { sql } from "drizzle-orm";
import {
  appendChanges,
  applyMigrations,
  type ChangeFeed,
  createChangeFeed,
  createLogger,
  type Database,
  type NewChange,
  openDatabase,
  type WatchBatch,
  type WatchOptions,
} from "../src/index.ts";
import { probeMigrations, probeTables } from "./probe-service.ts";

let testDatabase: TestDatabase;
let database: Database<typeof probeTables>;
let feed: ChangeFeed;
before(async () => {
  testDatabase = await createTestDatabase();
  database = openDatabase({
    url: testDatabase.url,
    schema: "probe",
    tables: probeTables,
    applicationName: "change-feed-test",
  });
  await applyMigrations(database, probeMigrations);
  // A slow poll, so that the tests below see notifications at work; one test makes its own.
  feed = await createChangeFeed({
    sql: database.sql,
    schema: "probe",
    logger: createLogger("change-feed-test", "silent"),
    pollIntervalMs: 60_000,
  });
});
after(async () => {
  await feed.close();
  await database.close();
  await testDatabase.drop();
});

const change = (entityId: string, partition?: string): NewChange => ({
  entityId,
  type: "created",
  data: { entityId },
  partition,
});

/** Appends `changes` in one committed transaction and returns their revisions. */
const commit = (...changes: NewChange[]) =>
  database.db.transaction((tx) => appendChanges(tx, "probe", changes));

/** The newest committed revision, read from the log itself (a feed learns of it a little later). */
async function headRevision(): Promise<bigint> {
  const [row] = await database.sql<{ head: string }[]>`
    select coalesce(max(revision), 0)::text as head from probe.changes`;
  return BigInt(row?.head ?? "0");
}

/** Reads a watch in the background so that tests can wait for what it has delivered. */
function startWatch(options: Omit<WatchOptions, "signal">, source: ChangeFeed = feed) {
  const controller = new AbortController();
  const batches: WatchBatch[] = [];
  let failure: unknown;
  const done = (async () => {
    try {
      for await (const batch of source.watch({ ...options, signal: controller.signal })) {
        batches.push(batch);
      }
    } catch (error) {
      failure = error;
    }
  })();
  return {
    batches,
    ids: () => batches.flatMap((batch) => batch.records.map((record) => record.entityId)),
    revisions: () => batches.flatMap((batch) => batch.records.map((record) => record.revision)),
    failure: () => failure,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

describe("appendChanges", () => {
  test("gives consecutive revisions, and a watch from 0 receives them in order", async () => {
    const first = await commit(change("a"), change("b"));
    const second = await commit(change("c"));
    assert.equal(first.length, 2);
    assert.equal(first[1], (first[0] ?? 0n) + 1n);
    assert.equal(second[0], (first[1] ?? 0n) + 1n);
    const watch = startWatch({ after: 0n });
    await waitFor(() => watch.ids().length >= 3);
    await watch.stop();
    assert.deepEqual(watch.ids(), ["a", "b", "c"]);
  });

  test("a rolled-back transaction leaves no event and no gap", async () => {
    const latest = await headRevision();
    await assert.rejects(
      database.db.transaction(async (tx) => {
        await appendChanges(tx, "probe", [change("rolled-back")]);
        throw new Error("the write failed after its change was appended");
      }),
    );
    const [next] = await commit(change("kept"));
    assert.equal(next, latest + 1n);
    const watch = startWatch({ after: latest });
    await waitFor(() => watch.ids().includes("kept"));
    await watch.stop();
    assert.deepEqual(watch.ids(), ["kept"]);
  });

  test("revisions follow commit order: a writer waits for the open transaction before it", async () => {
    const watch = startWatch({ after: await headRevision() });
    let releaseFirst = () => {};
    const firstHolds = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let firstAppended = () => {};
    const appended = new Promise<void>((resolve) => {
      firstAppended = resolve;
    });
    const first = database.db.transaction(async (tx) => {
      const revisions = await appendChanges(tx, "probe", [change("first")]);
      firstAppended();
      await firstHolds;
      return revisions;
    });
    await appended;
    const second = commit(change("second"));
    // The second writer is blocked on the log's lock, not merely slow.
    await waitFor(
      async () => {
        const [row] = await database.sql<{ waiting: number }[]>`
          select count(*)::int as waiting from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`;
        return (row?.waiting ?? 0) > 0;
      },
      { message: "the second writer never waited for the first" },
    );
    assert.deepEqual(watch.ids(), [], "nothing is visible before the first commits");
    releaseFirst();
    const [[firstRevision], [secondRevision]] = await Promise.all([first, second]);
    assert.equal(secondRevision, (firstRevision ?? 0n) + 1n);
    await waitFor(() => watch.ids().length >= 2);
    await watch.stop();
    assert.deepEqual(watch.ids(), ["first", "second"]);
  });
});

describe("createChangeFeed", () => {
  test("from R: every later change exactly once, in order, across many commits", async () => {
    const start = await headRevision();
    const watch = startWatch({ after: start, batchSize: 7 });
    const expected: string[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async (_, writer) => {
        for (let i = 0; i < 3; i++) {
          const id = `w${writer}-${i}`;
          expected.push(id);
          await commit(change(id));
        }
      }),
    );
    await waitFor(() => watch.ids().length >= expected.length, { message: "events missing" });
    await watch.stop();
    assert.deepEqual([...watch.ids()].sort(), [...expected].sort(), "each change exactly once");
    const revisions = watch.revisions();
    revisions.forEach((revision, i) => {
      assert.equal(revision, start + BigInt(i + 1), "consecutive, in revision order");
    });
    for (const batch of watch.batches) {
      assert.ok(batch.records.length <= 7, "batches respect batchSize");
      if (batch.records.length > 0) assert.equal(batch.revision, batch.records.at(-1)?.revision);
    }
  });

  test("an idle watch gets an empty batch with the current revision at once, then heartbeats", async () => {
    const latest = await headRevision();
    const started = Date.now();
    const watch = startWatch({ after: latest, heartbeatMs: 150 });
    await waitFor(() => watch.batches.length >= 1, { timeoutMs: 1_000 });
    assert.ok(Date.now() - started < 1_000);
    await waitFor(() => watch.batches.length >= 3, { timeoutMs: 3_000 });
    await watch.stop();
    for (const batch of watch.batches.slice(0, 3)) {
      assert.deepEqual(batch.records, []);
      assert.equal(batch.revision, latest);
    }
  });

  test("a partition watch sees only its partition", async () => {
    const watch = startWatch({ after: await headRevision(), partition: "alice" });
    await commit(change("a1", "alice"), change("b1", "bob"), change("n1"));
    await commit(change("a2", "alice"));
    await waitFor(() => watch.ids().length >= 2);
    await watch.stop();
    assert.deepEqual(watch.ids(), ["a1", "a2"]);
  });

  test("a change committed without a notification still arrives (by polling)", async () => {
    const polling = await createChangeFeed({
      sql: database.sql,
      schema: "probe",
      logger: createLogger("change-feed-test", "silent"),
      pollIntervalMs: 50,
    });
    try {
      const start = await headRevision();
      const watch = startWatch({ after: start }, polling);
      // What appendChanges writes, minus its NOTIFY: as if the notification were lost.
      await database.db.execute(
        sql`insert into probe.changes (revision, entity_id, type, data)
            values (${String(start + 1n)}::bigint, 'silent', 'created', '{}'::jsonb)`,
      );
      await waitFor(() => watch.ids().includes("silent"), {
        timeoutMs: 3_000,
        message: "the change was never delivered without its notification",
      });
      await watch.stop();
    } finally {
      await polling.close();
    }
  });

  test("a start revision older than the kept history is out_of_range naming the oldest", async () => {
    const [, , latest = 0n] = await commit(change("x"), change("y"), change("z"));
    // Pruning, as a retention job would.
    await database.db.execute(
      sql`delete from probe.changes where revision < ${String(latest - 1n)}`,
    );
    const oldest = latest - 1n;

    const tooOld = startWatch({ after: oldest - 2n });
    await waitFor(() => tooOld.failure() !== undefined);
    await tooOld.stop();
    const error = ConnectError.from(tooOld.failure());
    assert.equal(error.code, Code.OutOfRange);
    assert.match(error.rawMessage, new RegExp(`\\b${oldest}\\b`));

    const justInTime = startWatch({ after: oldest - 1n });
    await waitFor(() => justInTime.ids().length >= 2);
    await justInTime.stop();
    assert.equal(justInTime.failure(), undefined);
    assert.deepEqual(justInTime.ids(), ["y", "z"]);
  });

  test("a watch ends when its signal aborts, and every watch ends when the feed closes", async () => {
    const own = await createChangeFeed({
      sql: database.sql,
      schema: "probe",
      logger: createLogger("change-feed-test", "silent"),
    });
    const aborted = startWatch({ after: own.latestRevision() }, own);
    await waitFor(() => aborted.batches.length >= 1);
    await aborted.stop();

    const controller = new AbortController();
    const open = own.watch({ after: own.latestRevision(), signal: controller.signal });
    await open.next();
    const pending = open.next();
    await own.close();
    assert.deepEqual(await pending, { done: true, value: undefined });
  });
});
