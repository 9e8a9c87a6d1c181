// Issue 3, point 7 and issue 7: 1,000 concurrent WatchUsers streams on one users process with the
// real change feed and PostgreSQL; 20 users created one after another; how long each change takes
// from its commit to each watcher, and what each open watcher costs the server in memory.
import type { ChangeFeed } from "@shop/mesh";
import { openDatabase } from "@shop/mesh";
import { createUser } from "../../services/users/src/domain/create-user.ts";
import type { User } from "../../services/users/src/domain/user.ts";
import { tables } from "../../services/users/src/store/schema.ts";
import { createUserStore } from "../../services/users/src/store/user-store.ts";
import type { ServerProcess } from "../lib/processes.ts";
import { median, percentile, sortedSamples } from "../lib/stats.ts";
import { decodeArrivals, openWatchers, type WatchProtocol } from "../lib/watchers.ts";

/** What one fan-out round measured on one server. */
export interface FanOutRound {
  watchers: number;
  changes: number;
  /** Commit to delivery over every (watcher, change), in milliseconds. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Median over the changes of the time until the last watcher had it. */
  lastWatcherMedianMs: number;
  /** Server memory growth with the watchers open (after a full GC), per watcher, in bytes. */
  rssPerWatcher: number;
  heapPerWatcher: number;
  /** Time to open every stream and get every first response. */
  openMs: number;
  /** Deliveries as expected (watchers × changes), and what went wrong. */
  delivered: number;
  missing: number;
  duplicated: number;
  outOfOrder: number;
}

/** Writes users the way the users service does (its domain and store), from the driver. */
export interface UserWriter {
  create(name: string, email: string): Promise<User>;
  /** The newest revision in the users' change log. */
  latestRevision(): Promise<bigint>;
  close(): Promise<void>;
}

/**
 * Opens a writer on the users schema. It commits through the service's own domain function and
 * store (same SQL, same change-log append), so the moment its commit returns is the commit time.
 */
export function createUserWriter(databaseUrl: string): UserWriter {
  const database = openDatabase({
    url: databaseUrl,
    schema: "users",
    tables,
    applicationName: "bench-writer",
  });
  // The store needs a feed only to watch; the writer never does.
  const noFeed = {} as ChangeFeed;
  const store = createUserStore(database, noFeed);
  return {
    create: (name, email) => createUser(store, { name, email }),
    async latestRevision() {
      const [row] = await database.sql<{ last: string }[]>`
        select coalesce(max(revision), 0)::text as last from users.changes`;
      return BigInt(row?.last ?? "0");
    },
    close: () => database.close(),
  };
}

/**
 * One round on a freshly started `server`: note its memory, open `watchers` streams, note its
 * memory again, make `warmupChanges` unmeasured changes (the JIT's turn), then `changes` measured
 * ones, and close the streams.
 */
export async function fanOutRound(options: {
  server: ServerProcess;
  writer: UserWriter;
  watchers: number;
  connections: number;
  warmupChanges: number;
  changes: number;
  tag: string;
  /** The watchers' protocol: gRPC (the default), or Connect streaming. */
  protocol?: WatchProtocol;
}): Promise<FanOutRound> {
  const { server, writer } = options;
  const startRevision = await writer.latestRevision();
  const before = await server.memory();
  const openStarted = performance.now();
  const pool = await openWatchers({
    url: server.url,
    count: options.watchers,
    connections: options.connections,
    startRevision,
    protocol: options.protocol,
  });
  try {
    await pool.allStarted(30_000);
    const openMs = performance.now() - openStarted;
    const open = await server.memory();

    const commits: { id: string; at: number }[] = [];
    for (let i = 0; i < options.warmupChanges + options.changes; i++) {
      const user = await writer.create(
        `Watcher Bench ${i}`,
        `fanout-${options.tag}-${i}-${Date.now()}@example.com`,
      );
      if (i >= options.warmupChanges) commits.push({ id: user.id, at: performance.now() });
      await pool.allReceived(i + 1, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const latencies: number[] = [];
    const lastPerChange = commits.map(() => 0);
    const commitIndex = new Map(commits.map((commit, index) => [commit.id, index]));
    let missing = 0;
    let duplicated = 0;
    let outOfOrder = 0;
    for (const watcher of pool.watchers) {
      const seen = new Set<string>();
      let lastRevision = startRevision;
      for (const { at, message } of decodeArrivals(watcher)) {
        for (const event of message.events) {
          if (event.revision <= lastRevision) outOfOrder++;
          lastRevision = event.revision;
          const id = event.user?.id ?? "";
          const index = commitIndex.get(id);
          if (index === undefined) continue;
          if (seen.has(id)) {
            duplicated++;
            continue;
          }
          seen.add(id);
          const latency = at - (commits[index]?.at ?? at);
          latencies.push(latency);
          if (latency > (lastPerChange[index] ?? 0)) lastPerChange[index] = latency;
        }
      }
      missing += commits.length - seen.size;
    }
    const sorted = sortedSamples(latencies);
    return {
      watchers: options.watchers,
      changes: options.changes,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.at(-1) ?? Number.NaN,
      lastWatcherMedianMs: percentile(sortedSamples(lastPerChange), 50),
      rssPerWatcher: (open.rss - before.rss) / options.watchers,
      heapPerWatcher: (open.heapUsed - before.heapUsed) / options.watchers,
      openMs,
      delivered: latencies.length,
      missing,
      duplicated,
      outOfOrder,
    };
  } finally {
    await pool.close();
  }
}

/** The rounds of one server, with the medians the report shows and the delivery totals. */
export interface FanOutResult {
  key: string;
  label: string;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  lastWatcherMedianMs: number;
  rssPerWatcher: number;
  heapPerWatcher: number;
  openMs: number;
  delivered: number;
  expected: number;
  missing: number;
  duplicated: number;
  outOfOrder: number;
  rounds: FanOutRound[];
}

/** Medians over `rounds`, and delivery counts summed. */
export function summariseFanOut(key: string, label: string, rounds: FanOutRound[]): FanOutResult {
  const sum = (pick: (round: FanOutRound) => number) =>
    rounds.reduce((total, round) => total + pick(round), 0);
  const mid = (pick: (round: FanOutRound) => number) => median(rounds.map(pick));
  return {
    key,
    label,
    p50Ms: mid((r) => r.p50Ms),
    p99Ms: mid((r) => r.p99Ms),
    maxMs: mid((r) => r.maxMs),
    lastWatcherMedianMs: mid((r) => r.lastWatcherMedianMs),
    rssPerWatcher: mid((r) => r.rssPerWatcher),
    heapPerWatcher: mid((r) => r.heapPerWatcher),
    openMs: mid((r) => r.openMs),
    delivered: sum((r) => r.delivered),
    expected: sum((r) => r.watchers * r.changes),
    missing: sum((r) => r.missing),
    duplicated: sum((r) => r.duplicated),
    outOfOrder: sum((r) => r.outOfOrder),
    rounds,
  };
}
