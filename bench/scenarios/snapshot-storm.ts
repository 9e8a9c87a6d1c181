// Issue 21: a storm of watchers asking for the current state at once. 100 WatchUsers from revision
// 0 open together on a users process over N users; how much heap the process needed at its worst
// beyond what it held before, how long until every watcher had the whole state, and how the other
// calls (GetUser, which both servers serve, from a client process of their own) fared meanwhile.
import { fork } from "node:child_process";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { EventType } from "@shop/api/shop/user/v1/user_pb";
import { WatchUsersResponseSchema } from "@shop/api/shop/user/v1/user_service_pb";
import type postgres from "postgres";
import type { ServerProcess } from "../lib/processes.ts";
import { median, percentile, sortedSamples } from "../lib/stats.ts";
import { openWatchers } from "../lib/watchers.ts";
import type { OtherCallsQuestion, OtherCallsTaken } from "./other-calls.ts";

/** What one storm measured on one server. */
export interface StormRound {
  rows: number;
  watchers: number;
  /** Heap in use after a full GC before the storm. */
  heapBefore: number;
  /**
   * In a memory round: the most heap held during the storm (right after full GCs forced every
   * 100 ms) minus `heapBefore`; NaN in a timing round, which forces no GC.
   */
  heapAdded: number;
  /** In a memory round: the 95th percentile of those samples minus `heapBefore` (see PeakHeap). */
  heapHeldP95: number;
  /** The most heap in use during the storm, garbage included, minus `heapBefore`. */
  heapGrowth: number;
  /** From opening the streams until every watcher had the whole state. */
  allSnapshotsMs: number;
  /** From opening the streams until the first watcher had the whole state. */
  firstSnapshotMs: number;
  /** Watchers whose snapshot held exactly `rows` users. */
  complete: number;
  /** The other calls: latencies before and during the storm, and failures during it. */
  quietP50Ms: number;
  quietP99Ms: number;
  stormP50Ms: number;
  stormP99Ms: number;
  stormCalls: number;
  stormFailures: number;
  firstFailure: string | undefined;
}

/** Adds users straight to the users table until it holds `total`. */
export async function growUsers(sql: postgres.Sql, total: number): Promise<void> {
  const [row] = await sql<{ count: string }[]>`select count(*)::text as count from users.users`;
  const missing = total - Number(row?.count ?? "0");
  if (missing <= 0) return;
  const tag = Date.now().toString(36);
  await sql`
    insert into users.users (name, email)
    select 'Storm User ' || i, 'storm-' || ${tag} || '-' || i || '@example.com'
    from generate_series(1, ${missing}) as i`;
}

/** How long the other calls run, unmeasured, before the quiet window. */
const otherCallsWarmupMs = 2_000;

/**
 * Starts the other calls (GetUser for each of `ids` in turn, 5 ms apart) in a process of their
 * own (see other-calls.ts), on the load generator's cores like the rest of the clients. Also the
 * other calls of test/snapshot-storm.test.ts.
 */
export function callOthers(url: string, ids: readonly string[]) {
  const child = fork(path.join(import.meta.dirname, "other-calls.ts"), [url, ids.join(",")], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    /** The calls so far, and starts counting anew. */
    take(): Promise<{ latencies: number[]; failures: string[] }> {
      return new Promise((resolve, reject) => {
        const onMessage = (message: OtherCallsTaken) => {
          child.off("exit", onExit);
          resolve(message);
        };
        const onExit = (code: number | null) => {
          child.off("message", onMessage);
          reject(new Error(`the other calls' process exited with ${code}`));
        };
        child.once("message", onMessage);
        child.once("exit", onExit);
        child.send({ type: "take" } satisfies OtherCallsQuestion);
      });
    },
    async stop() {
      if (child.connected) child.send({ type: "stop" } satisfies OtherCallsQuestion);
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Warms a fresh server's watch path: `watchers` streams from revision 0, each closed once it has had
 * `pages` responses. V8 compiles and optimises that path the first time it runs, once per process
 * and whatever the size of the table; left in the measured storm, that one-off work would be
 * measured as the storm's: a few MiB of growth landing in one GC sample or another, and stalls of
 * 20-50 ms (the watch request's validation rules compiled, the path's first runs) that were then
 * the other calls' slowest. The other calls' quiet window is measured warm for the same reason.
 * The pages it reads are kept for 5 s (`shareMs` of the change feed); the storm starts later.
 */
async function warmUp(options: {
  url: string;
  watchers: number;
  connections: number;
  pages: number;
}): Promise<void> {
  const responses = Array.from({ length: options.watchers }, () => 0);
  const pool = await openWatchers({
    url: options.url,
    count: options.watchers,
    connections: options.connections,
    startRevision: 0n,
    onMessage(watcher) {
      responses[watcher] = (responses[watcher] ?? 0) + 1;
    },
  });
  try {
    const deadline = performance.now() + 60_000;
    while (responses.some((count) => count < options.pages) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    await pool.close();
  }
}

/**
 * One storm on a freshly started `server` over a table of `rows` users: `quietSeconds` of other
 * calls alone, then `watchers` streams from revision 0 at once with the calls going on.
 */
export async function stormRound(options: {
  server: ServerProcess;
  rows: number;
  watchers: number;
  connections: number;
  quietSeconds: number;
  /** Users the other calls read. */
  userIds: readonly string[];
  /** A memory round: a full GC is forced every 100 ms to see what is held (its times are not used). */
  memory: boolean;
}): Promise<StormRound> {
  const { server } = options;
  await warmUp({
    url: server.url,
    watchers: options.watchers,
    connections: options.connections,
    pages: 20,
  });
  const others = callOthers(server.url, options.userIds);
  try {
    // The first calls of a fresh process pay for V8 compiling the GetUser path (tens of ms each):
    // they are made and dropped, so that "quiet" is the service's steady state.
    await new Promise((resolve) => setTimeout(resolve, otherCallsWarmupMs));
    // The heap before is read after two forced full GCs, which stop the process for tens of ms:
    // before the quiet window, so that their pause lands in neither window (read between the two,
    // it held up one of the storm's calls, which was then its p99).
    const heapBefore = (await server.memory()).heapUsed;
    // A call the pause held up ends after it: dropped with the warm-up's.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await others.take();
    await new Promise((resolve) => setTimeout(resolve, options.quietSeconds * 1000));
    const quiet = await others.take();
    await server.peakHeap(options.memory ? 100 : undefined);

    // Each watcher counts the users of its snapshot; the first response without snapshot events
    // (the live feed's first, at once) ends it.
    const counts = Array.from({ length: options.watchers }, () => 0);
    const finishedAt: (number | undefined)[] = counts.map(() => undefined);
    const opened = performance.now();
    const pool = await openWatchers({
      url: server.url,
      count: options.watchers,
      connections: options.connections,
      startRevision: 0n,
      onMessage(watcher, bytes, at) {
        if (finishedAt[watcher] !== undefined) return;
        const message = fromBinary(WatchUsersResponseSchema, bytes);
        let snapshot = 0;
        for (const event of message.events) if (event.type === EventType.SNAPSHOT) snapshot++;
        if (snapshot === 0 && (counts[watcher] ?? 0) > 0) finishedAt[watcher] = at;
        counts[watcher] = (counts[watcher] ?? 0) + snapshot;
      },
    });
    try {
      const deadline = performance.now() + 300_000;
      while (finishedAt.some((at) => at === undefined)) {
        if (performance.now() > deadline) {
          throw new Error(
            `${finishedAt.filter((at) => at !== undefined).length} of ${options.watchers} watchers had the whole state after 300 s`,
          );
        }
        const ended = pool.watchers.find((watcher) => watcher.ended !== undefined);
        if (ended) throw new Error(`a watch ended early: ${ended.ended}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      await pool.close();
    }
    const snapshotMs = finishedAt.map((at) => (at ?? 0) - opened);
    const peak = await server.peakHeap();
    const storm = await others.take();
    const quietLatencies = sortedSamples(quiet.latencies);
    const stormLatencies = sortedSamples(storm.latencies);
    return {
      rows: options.rows,
      watchers: options.watchers,
      heapBefore,
      heapAdded: options.memory ? peak.liveHeap - heapBefore : Number.NaN,
      heapHeldP95: options.memory ? peak.liveHeapP95 - heapBefore : Number.NaN,
      heapGrowth: peak.heapUsed - heapBefore,
      allSnapshotsMs: Math.max(...snapshotMs),
      firstSnapshotMs: Math.min(...snapshotMs),
      complete: counts.filter((count) => count === options.rows).length,
      quietP50Ms: percentile(quietLatencies, 50),
      quietP99Ms: percentile(quietLatencies, 99),
      stormP50Ms: percentile(stormLatencies, 50),
      stormP99Ms: percentile(stormLatencies, 99),
      stormCalls: storm.latencies.length + storm.failures.length,
      stormFailures: storm.failures.length,
      firstFailure: storm.failures[0],
    };
  } finally {
    await others.stop();
  }
}

/** One server's storms at one size, summarised over the rounds (medians). */
export interface StormResult {
  key: string;
  label: string;
  rows: number;
  rounds: StormRound[];
  heapAdded: number;
  heapHeldP95: number;
  heapGrowth: number;
  allSnapshotsMs: number;
  quietP99Ms: number;
  stormP99Ms: number;
  stormFailures: number;
  complete: number;
}

/**
 * The medians of the timing rounds `rounds` (failures and incomplete snapshots added up) and the
 * heap held in the memory rounds `memory`.
 */
export function summariseStorm(
  key: string,
  label: string,
  rows: number,
  rounds: StormRound[],
  memory: StormRound[],
): StormResult {
  return {
    key,
    label,
    rows,
    rounds: [...rounds, ...memory],
    heapAdded: median(memory.map((round) => round.heapAdded)),
    heapHeldP95: median(memory.map((round) => round.heapHeldP95)),
    heapGrowth: median(rounds.map((round) => round.heapGrowth)),
    allSnapshotsMs: median(rounds.map((round) => round.allSnapshotsMs)),
    quietP99Ms: median(rounds.map((round) => round.quietP99Ms)),
    stormP99Ms: median(rounds.map((round) => round.stormP99Ms)),
    stormFailures: rounds.reduce((sum, round) => sum + round.stormFailures, 0),
    complete: Math.min(...[...rounds, ...memory].map((round) => round.complete)),
  };
}
