// Issue 20, point 3: how many changes a second one service commits with 1, 2 and 4 replicas on one
// PostgreSQL. Every committed change takes its revision under the service's change-log lock
// (appendChanges in packages/mesh/src/change-feed/log.ts), held until commit, so one service's
// writes are serialised across all its replicas. Each run is a closed loop of CreateUser (users)
// or AdjustStock (inventory, a product of its own per worker) over gRPC, spread round robin over
// the replicas' own addresses (client-side balancing, no edge), next to the same transaction
// issued directly from N connections (bench/lib/direct-write.ts): the database's own ceiling for
// that serialised section. Changes are counted in the change log as well as by the client, and
// meanwhile the lock is sampled and the CPU of the services, PostgreSQL and the client read: on a
// small machine the services' cores, not the lock, may be what stops them.
//
// Two more direct-SQL contenders ask whether the limit is the service's own lock at all. Every
// append also notifies (pg_notify), and PostgreSQL serialises the commits of all transactions that
// notified, server-wide: PreCommit_Notify (async.c) takes one heavyweight lock on pg_database
// itself and holds it until after the commit, WAL flush included. So every service writes at
// once, each with its own lock: if together they commit about what one commits alone, they share
// that limit (or the WAL flush); if about the sum, they do not. The NOTIFY lock is sampled
// meanwhile. And one service's transaction runs with the append minus its pg_notify, for what the
// notification costs the lock's holder.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import * as http2 from "node:http2";
import { availableParallelism } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  AdjustStockRequestSchema,
  InventoryService,
} from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { CreateUserRequestSchema, UserService } from "@shop/api/shop/user/v1/user_service_pb";
import postgres, { type Sql } from "postgres";
import { type ClosedLoopResult, closedLoop } from "../lib/closed-loop.ts";
import type { DirectWriteMessage, DirectWriteOptions } from "../lib/direct-write.ts";
import { grpcUnary } from "../lib/grpc-unary.ts";
import { cpuSecondsOf, type Pinning, pinnedCommand, root } from "../lib/processes.ts";
import { shares } from "../lib/report.ts";
import { grpcRequest } from "../lib/requests.ts";
import { type ServiceProcess, startService } from "../lib/services.ts";
import { median, percentile, sortedSamples } from "../lib/stats.ts";
import {
  type AppendVariant,
  addBenchProducts,
  type WriteService,
} from "../lib/write-transactions.ts";

/** The scenario's settings. */
export interface WriteCeilingShape {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** Calls in flight through the services, whatever the number of replicas. */
  concurrency: number;
  replicas: number[];
  /** Connections of the direct-SQL contender, each with one transaction in flight. */
  directConnections: number[];
  services: WriteService[];
  /** Connections per service of the direct SQL that writes every service at once (0: none). */
  atOnceConnections: number;
  /** The direct SQL whose append leaves out pg_notify: for which service, on how many connections. */
  withoutNotify: { service: WriteService; connections: number } | undefined;
}

/** CPU used during a measured window, in cores busy (CPU seconds per second). */
export interface CoresBusy {
  /** Every replica of the service together (none for the direct SQL). */
  services: number;
  postgres: number;
  /** The load generator, or the direct-SQL process (on the server cores) for the direct SQL. */
  client: number;
}

/** One measured round of one contender. */
export interface WriteRound {
  /** New revisions in the change log over the window. */
  changesPerSecond: number;
  /** Calls answered successfully inside the window. */
  acknowledgedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpu: CoresBusy;
  /** Share of the lock samples in which a transaction held the service's change-log lock. */
  lockHeldShare: number;
  /** Transactions waiting for that lock, on average over the samples. */
  lockWaiting: number;
  /** Time the lock was held per committed change (the held share of the window over its changes). */
  lockHeldMsPerChange: number;
  /** What the lock's holder was doing, as shares of the time it was held. */
  lockHolder: Record<string, number>;
  lockSamples: number;
  /** The server-wide NOTIFY lock, sampled when every service writes at once. */
  notifyLock?: NotifyLockFigures;
}

/** The NOTIFY lock over a window: shares of the samples, as for the change-log lock. */
export interface NotifyLockFigures {
  heldShare: number;
  waiting: number;
  /** Time it was held per change committed by any service in the window. */
  heldMsPerChange: number;
  holder: Record<string, number>;
}

/** A contender's rounds with their medians, and its calls and changes over whole runs. */
export interface WriteCeilingRow {
  service: WriteService;
  key: string;
  label: string;
  changesPerSecond: number;
  acknowledgedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError: string | undefined;
  /** Successful calls and new change-log entries, warm-up included: they should be equal. */
  acknowledged: number;
  committed: number;
  cpu: CoresBusy;
  lockHeldShare: number;
  lockWaiting: number;
  lockHeldMsPerChange: number;
  lockHolder: Record<string, number>;
  /** Medians of the NOTIFY lock's figures, for the contender that writes every service at once. */
  notifyLock: NotifyLockFigures | undefined;
  rounds: WriteRound[];
}

/** What the scenario measured, with what the figures depend on. */
export interface WriteCeilingResult {
  /** PostgreSQL's settings that decide what a commit costs. */
  database: { fsync: string; synchronousCommit: string };
  /** The cores the replicas and the direct-SQL process ran on, and how many. */
  serverCpus: string;
  serverCores: number;
  lockSampleGapMs: number;
  rows: WriteCeilingRow[];
}

/** What the runs share. */
interface Context {
  databaseUrl: string;
  pinning: Pinning;
  postgresCpu: (() => number) | undefined;
  shape: WriteCeilingShape;
  nodeFlags: (name: string) => string[];
  /** Registers a stop with the driver, for a run that is interrupted. */
  track: (stop: () => Promise<void>) => void;
  /** The driver's connections: the change log's revision and the lock samples. */
  sql: Sql;
  /** The products AdjustStock adds to, one per worker. */
  skus: string[];
}

interface Contender {
  key: string;
  label: string;
  replicas?: number;
  connections?: number;
  append?: AppendVariant;
}

/** A call that has not ended after this long fails. */
const deadlineMs = 10_000;
/** The pause between two samples of pg_locks. */
const sampleGapMs = 5;

/** How many cores a taskset list such as "0" or "0-2" names. */
function cpuCount(list: string): number {
  return list
    .split(",")
    .map((range) => range.split("-").map(Number))
    .reduce((sum, [from = 0, to = from]) => sum + to - from + 1, 0);
}

/** The change log's newest revision. */
async function latestRevision(sql: Sql, service: WriteService): Promise<bigint> {
  const [row] = await sql.unsafe<{ last: bigint }[]>(
    `select coalesce(max(revision), 0)::bigint as last from "${service}".changes`,
  );
  return BigInt(row?.last ?? 0n);
}

// An advisory lock on one bigint key (pg_advisory_xact_lock(hashtext(key)) takes the int4 hash
// widened to int8) shows in pg_locks as its upper 32 bits in classid, its lower in objid, objsubid 1.
// One row per transaction holding or waiting for it, with what its backend was doing.
const lockSample = `
  select l.granted, a.state, a.wait_event_type as "waitType", a.wait_event as "waitEvent"
  from pg_locks l join pg_stat_activity a on a.pid = l.pid
  where l.locktype = 'advisory' and l.objsubid = 1
    and l.database = (select oid from pg_database where datname = current_database())
    and l.classid::bigint = (hashtext($1)::bigint >> 32) & 4294967295
    and l.objid::bigint = hashtext($1)::bigint & 4294967295`;

// PreCommit_Notify's lock: on pg_database as a whole (objid 0), a shared object (database 0), so
// one for the whole server. One row per transaction holding or waiting for it.
const notifyLockSample = `
  select l.granted, a.state, a.wait_event_type as "waitType", a.wait_event as "waitEvent"
  from pg_locks l join pg_stat_activity a on a.pid = l.pid
  where l.locktype = 'object' and l.database = 0
    and l.classid = 'pg_database'::regclass and l.objid = 0 and l.objsubid = 0`;

interface LockRow {
  granted: boolean;
  state: string | null;
  waitType: string | null;
  waitEvent: string | null;
}

/**
 * What the lock's holder was doing. client: waiting for its client's next statement, until its
 * backend has read it (the client's turn, the loopback, the backend's own wake-up); waking: granted
 * the lock by the transaction before it but not yet running again; WAL: flushing the commit;
 * running: executing a statement; else PostgreSQL's wait event.
 */
function holderActivity(row: LockRow): string {
  if (
    row.waitEvent === "ClientRead" ||
    (row.waitEvent === null && row.state === "idle in transaction")
  ) {
    return "client";
  }
  if (row.waitType === "Lock") return "waking";
  if (row.waitEvent === "WalSync" || row.waitEvent === "WalWrite" || row.waitEvent === "WALWrite") {
    return "WAL";
  }
  if (row.waitEvent === null && row.state === "active") return "running";
  return row.waitEvent ?? row.state ?? "unknown";
}

/** What the samples of a change-log lock found. */
export interface LockFigures {
  /** Share of the samples in which a transaction held it. */
  heldShare: number;
  /** Transactions waiting for it, on average. */
  waiting: number;
  /** What its holder was doing, as shares of the samples in which it was held. */
  holder: Record<string, number>;
  samples: number;
}

/** Reads who holds and who waits for the service's change-log lock. */
function changeLogLock(sql: Sql, service: WriteService): () => Promise<LockRow[]> {
  return () => sql.unsafe<LockRow[]>(lockSample, [`changes:${service}`], { prepare: true });
}

/** Reads who holds and who waits for the server-wide NOTIFY lock. */
function notifyLock(sql: Sql): () => Promise<LockRow[]> {
  return () => sql.unsafe<LockRow[]>(notifyLockSample, [], { prepare: true });
}

/** Samples a lock with `read` every `sampleGapMs` until stopped. */
function sampleLock(read: () => Promise<LockRow[]>) {
  let running = true;
  let samples = 0;
  let held = 0;
  let waiting = 0;
  const holder: Record<string, number> = {};
  const sampling = (async () => {
    while (running) {
      // A failed sample ends the sampling (the run goes on to fail or finish on its own).
      const rows = await read().catch(() => undefined);
      if (rows === undefined) break;
      samples++;
      const holding = rows.find((row) => row.granted);
      if (holding) {
        held++;
        const activity = holderActivity(holding);
        holder[activity] = (holder[activity] ?? 0) + 1;
      }
      waiting += rows.filter((row) => !row.granted).length;
      await sleep(sampleGapMs);
    }
  })();
  return {
    async stop(): Promise<LockFigures> {
      running = false;
      await sampling;
      for (const activity of Object.keys(holder)) {
        holder[activity] = (holder[activity] ?? 0) / held;
      }
      return { heldShare: held / samples, waiting: waiting / samples, holder, samples };
    },
  };
}

interface Reading {
  at: number;
  revision: bigint;
  services: number;
  postgres: number;
  client: number;
}

/**
 * Reads the change log's revision now (before a run), and with the CPU counters as the measured
 * window opens and closes, sampling the lock in between: `onWindow` goes to the closed loop,
 * `finish` comes after it.
 */
async function startMeter(
  ctx: Context,
  service: WriteService,
  cpu: { services: () => number; client: () => number },
) {
  const before = await latestRevision(ctx.sql, service);
  const read = async (): Promise<Reading> => {
    const asked = performance.now();
    const revision = await latestRevision(ctx.sql, service);
    return {
      at: (asked + performance.now()) / 2,
      revision,
      services: cpu.services(),
      postgres: ctx.postgresCpu?.() ?? Number.NaN,
      client: cpu.client(),
    };
  };
  let opened: Reading | undefined;
  let closed: Reading | undefined;
  let sampler: ReturnType<typeof sampleLock> | undefined;
  let lock: LockFigures | undefined;
  return {
    async onWindow(edge: "open" | "close"): Promise<void> {
      if (edge === "open") {
        opened = await read();
        sampler = sampleLock(changeLogLock(ctx.sql, service));
      } else {
        lock = await sampler?.stop();
        closed = await read();
      }
    },
    async finish(result: ClosedLoopResult): Promise<WriteRun> {
      const committed = Number((await latestRevision(ctx.sql, service)) - before);
      if (!opened || !closed || !lock) throw new Error("the measured window was not read");
      const seconds = (closed.at - opened.at) / 1000;
      const changes = Number(closed.revision - opened.revision);
      const busy = (key: keyof CoresBusy) =>
        ((closed as Reading)[key] - (opened as Reading)[key]) / seconds;
      const sorted = sortedSamples(result.latencies);
      const round: WriteRound = {
        changesPerSecond: changes / seconds,
        acknowledgedPerSecond: result.completed / result.seconds,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        errors: result.errors,
        cpu: { services: busy("services"), postgres: busy("postgres"), client: busy("client") },
        lockHeldShare: lock.heldShare,
        lockWaiting: lock.waiting,
        lockHeldMsPerChange: changes > 0 ? (lock.heldShare * seconds * 1000) / changes : Number.NaN,
        lockHolder: lock.holder,
        lockSamples: lock.samples,
      };
      return {
        round,
        firstError: result.firstError,
        acknowledged: result.succeededTotal,
        committed,
      };
    },
  };
}

/** A measured run: its window's figures and, over the whole run, the calls and the changes. */
interface WriteRun {
  round: WriteRound;
  firstError: string | undefined;
  acknowledged: number;
  committed: number;
}

/** The gRPC method a service's write calls, and the bytes of call `n` from `worker`. */
function writeCall(service: WriteService, skus: readonly string[]) {
  const tag = randomUUID().slice(0, 8);
  return service === "users"
    ? {
        path: `/${UserService.typeName}/${UserService.method.createUser.name}`,
        frame: (n: number, _worker: number) =>
          grpcRequest(CreateUserRequestSchema, {
            name: `Write Ceiling ${n}`,
            email: `wc-${tag}-${n}@example.com`,
          }),
      }
    : {
        path: `/${InventoryService.typeName}/${InventoryService.method.adjustStock.name}`,
        frame: (_n: number, worker: number) =>
          grpcRequest(AdjustStockRequestSchema, { sku: skus[worker % skus.length], delta: 1n }),
      };
}

/** Awaits processes started together; if one failed to start, stops the others and throws. */
async function allStarted<T>(
  starting: Promise<T>[],
  stop: (started: T) => Promise<void> | void,
): Promise<T[]> {
  const settled = await Promise.allSettled(starting);
  const started = settled.flatMap((result) =>
    result.status === "fulfilled" ? [result.value] : [],
  );
  const failed = settled.find((result) => result.status === "rejected");
  if (failed) {
    await Promise.all(started.map(stop));
    throw failed.reason;
  }
  return started;
}

/** Starts `count` replicas of `service` at once; if one fails, stops the others. */
async function startReplicas(
  ctx: Context,
  service: WriteService,
  count: number,
): Promise<ServiceProcess[]> {
  const replicas = await allStarted(
    Array.from({ length: count }, (_, i) =>
      startService(
        service,
        { DATABASE_URL: ctx.databaseUrl },
        ctx.pinning,
        ctx.nodeFlags(`${service}-${count}-${i + 1}`),
      ),
    ),
    (replica) => replica.stop(),
  );
  for (const replica of replicas) ctx.track(replica.stop);
  return replicas;
}

/** One run through `replicas` fresh replicas of the service, calls round robin over them. */
async function throughReplicas(
  ctx: Context,
  service: WriteService,
  replicas: number,
): Promise<WriteRun> {
  const processes = await startReplicas(ctx, service, replicas);
  const sessions = processes.map((replica) => {
    const session = http2.connect(replica.url);
    session.on("error", () => {});
    return session;
  });
  try {
    const call = writeCall(service, ctx.skus);
    const meter = await startMeter(ctx, service, {
      services: () => processes.reduce((sum, replica) => sum + cpuSecondsOf(replica.pid), 0),
      client: () => {
        const used = process.cpuUsage();
        return (used.user + used.system) / 1e6;
      },
    });
    const result = await closedLoop({
      concurrency: ctx.shape.concurrency,
      seconds: ctx.shape.seconds,
      warmupSeconds: ctx.shape.warmupSeconds,
      call: async (n, worker) => {
        const session = sessions[n % sessions.length] as http2.ClientHttp2Session;
        const failure = await grpcUnary(session, call.path, call.frame(n, worker), deadlineMs);
        if (failure !== undefined) throw new Error(failure);
      },
      onWindow: (edge) => meter.onWindow(edge),
    });
    return await meter.finish(result);
  } finally {
    for (const session of sessions) session.close();
    await Promise.all(processes.map((replica) => replica.stop()));
  }
}

/** A direct-SQL process, connected and waiting for the word to start its closed loop. */
interface DirectProcess {
  start(): void;
  /** The run's figures, once the process has ended. */
  finish(): Promise<WriteRun>;
  kill(): void;
}

type WindowEdge = "open" | "close";

/**
 * Starts a process on the server cores that will run the service's transaction from
 * `connections` connections, metered like the services; `onWindow` also hears its window's edges.
 */
async function spawnDirectSql(
  ctx: Context,
  service: WriteService,
  connections: number,
  append: AppendVariant,
  onWindow?: (edge: WindowEdge) => Promise<void>,
): Promise<DirectProcess> {
  const options: DirectWriteOptions = {
    databaseUrl: ctx.databaseUrl,
    service,
    connections,
    seconds: ctx.shape.seconds,
    warmupSeconds: ctx.shape.warmupSeconds,
    emailPrefix: `wc-direct-${randomUUID().slice(0, 8)}`,
    skus: ctx.skus,
    append,
  };
  const [command, args] = pinnedCommand(ctx.pinning, ctx.pinning.serverCpus, process.execPath, [
    path.join(root, "bench", "lib", "direct-write.ts"),
    JSON.stringify(options),
  ]);
  let pid = 0;
  const meter = await startMeter(ctx, service, {
    services: () => Number.NaN,
    client: () => cpuSecondsOf(pid),
  });
  const child: ChildProcess = spawn(command, args, {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = once(child, "exit");
  // taskset execs the command, so the pid is the direct-SQL process's own.
  pid = child.pid ?? 0;
  let edges = Promise.resolve();
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const result = new Promise<ClosedLoopResult>((resolve, reject) => {
    child.on("message", (message: DirectWriteMessage) => {
      if (message.type === "ready") {
        markReady();
      } else if (message.type === "window") {
        const edge = message.edge;
        edges = edges.then(async () => {
          await Promise.all([meter.onWindow(edge), onWindow?.(edge)]);
        });
      } else {
        const { type: _type, ...loop } = message;
        resolve(loop);
      }
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      reject(new Error(`the direct-SQL process exited with ${code} before its result`)),
    );
  });
  // A process that fails before it is ready rejects the result instead.
  await Promise.race([ready, result]);
  return {
    start: () => child.send({ type: "start" }),
    async finish() {
      const loop = await result;
      await edges;
      await exited;
      return meter.finish(loop);
    },
    kill: () => child.kill(),
  };
}

/** One run of the service's transaction from `connections` connections, in a process on the server cores. */
async function directSql(
  ctx: Context,
  service: WriteService,
  connections: number,
  append: AppendVariant,
): Promise<WriteRun> {
  const direct = await spawnDirectSql(ctx, service, connections, append);
  direct.start();
  return direct.finish();
}

/**
 * One run of every service's transaction at once, `connections` connections each: one process per
 * service, started together so that their windows coincide. Meanwhile the NOTIFY lock is sampled
 * through `sql`, over the first one's window; its time per change counts every service's changes.
 */
async function directSqlAtOnce(
  sql: Sql,
  contexts: ReadonlyMap<WriteService, Context>,
  connections: number,
): Promise<Map<WriteService, WriteRun>> {
  let sampler: ReturnType<typeof sampleLock> | undefined;
  let notify: LockFigures | undefined;
  const sampleNotifyLock = async (edge: WindowEdge) => {
    if (edge === "open") sampler = sampleLock(notifyLock(sql));
    else notify = await sampler?.stop();
  };
  const writers = await allStarted(
    [...contexts].map(async ([service, ctx], i) => ({
      service,
      direct: await spawnDirectSql(
        ctx,
        service,
        connections,
        "as-the-services",
        i === 0 ? sampleNotifyLock : undefined,
      ),
    })),
    (writer) => writer.direct.kill(),
  );
  for (const writer of writers) writer.direct.start();
  const runs = await Promise.all(
    writers.map(async (writer) => ({ service: writer.service, run: await writer.direct.finish() })),
  );
  const changesPerSecond = runs.reduce((sum, { run }) => sum + run.round.changesPerSecond, 0);
  const notifyLockFigures = notify && {
    heldShare: notify.heldShare,
    waiting: notify.waiting,
    heldMsPerChange: (notify.heldShare * 1000) / changesPerSecond,
    holder: notify.holder,
  };
  return new Map(
    runs.map(({ service, run }) => [
      service,
      { ...run, round: { ...run.round, notifyLock: notifyLockFigures } },
    ]),
  );
}

/** Medians of shares by name over rounds, a name missing from a round counting 0 there. */
function medianShares(records: Record<string, number>[]): Record<string, number> {
  const names = [...new Set(records.flatMap((record) => Object.keys(record)))];
  return Object.fromEntries(
    names.map((name) => [name, median(records.map((record) => record[name] ?? 0))]),
  );
}

/** Medians of the NOTIFY lock's figures over the rounds that sampled it. */
function medianNotifyLock(rounds: WriteRound[]): NotifyLockFigures | undefined {
  const figures = rounds.flatMap((round) => round.notifyLock ?? []);
  if (figures.length === 0) return undefined;
  const mid = (value: (figure: NotifyLockFigures) => number) => median(figures.map(value));
  return {
    heldShare: mid((f) => f.heldShare),
    waiting: mid((f) => f.waiting),
    heldMsPerChange: mid((f) => f.heldMsPerChange),
    holder: medianShares(figures.map((f) => f.holder)),
  };
}

function summarise(service: WriteService, contender: Contender, runs: WriteRun[]): WriteCeilingRow {
  const rounds = runs.map((run) => run.round);
  const mid = (value: (round: WriteRound) => number) => median(rounds.map(value));
  return {
    service,
    key: contender.key,
    label: contender.label,
    changesPerSecond: mid((r) => r.changesPerSecond),
    acknowledgedPerSecond: mid((r) => r.acknowledgedPerSecond),
    p50Ms: mid((r) => r.p50Ms),
    p99Ms: mid((r) => r.p99Ms),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    firstError: runs.find((run) => run.firstError !== undefined)?.firstError,
    acknowledged: runs.reduce((sum, run) => sum + run.acknowledged, 0),
    committed: runs.reduce((sum, run) => sum + run.committed, 0),
    cpu: {
      services: mid((r) => r.cpu.services),
      postgres: mid((r) => r.cpu.postgres),
      client: mid((r) => r.cpu.client),
    },
    lockHeldShare: mid((r) => r.lockHeldShare),
    lockWaiting: mid((r) => r.lockWaiting),
    lockHeldMsPerChange: mid((r) => r.lockHeldMsPerChange),
    lockHolder: medianShares(rounds.map((r) => r.lockHolder)),
    notifyLock: medianNotifyLock(rounds),
    rounds,
  };
}

/** The contenders of one service, in the order of a round: replicas, then direct SQL. */
function contendersOf(shape: WriteCeilingShape, service: WriteService): Contender[] {
  const withoutNotify = shape.withoutNotify?.service === service ? shape.withoutNotify : undefined;
  return [
    ...shape.replicas.map((replicas) => ({
      key: `replicas-${replicas}`,
      label: `${replicas} replica${replicas === 1 ? "" : "s"}`,
      replicas,
    })),
    ...shape.directConnections.map((connections) => ({
      key: `direct-${connections}`,
      label: `direct SQL, ${connections} connection${connections === 1 ? "" : "s"}`,
      connections,
    })),
    ...(withoutNotify
      ? [
          {
            key: `direct-${withoutNotify.connections}-without-notify`,
            label: `direct SQL, without NOTIFY, ${withoutNotify.connections} connections`,
            connections: withoutNotify.connections,
            append: "without-notify" as const,
          },
        ]
      : []),
  ];
}

/** One run of a contender of one service. */
function runContender(
  ctx: Context,
  service: WriteService,
  contender: Contender,
): Promise<WriteRun> {
  return contender.replicas !== undefined
    ? throughReplicas(ctx, service, contender.replicas)
    : directSql(ctx, service, contender.connections ?? 1, contender.append ?? "as-the-services");
}

/** A lock's figures for the log: held share, time per change, waiting, what its holder did. */
function describeLock(figures: {
  heldShare: number;
  heldMsPerChange: number;
  waiting: number;
  holder: Record<string, number>;
}): string {
  return `${(figures.heldShare * 100).toFixed(0)} % (${figures.heldMsPerChange.toFixed(3)} ms/change, ${figures.waiting.toFixed(1)} waiting; holder: ${shares(figures.holder)})`;
}

/** A run's line in the log. */
function describeRun(
  service: WriteService,
  round: number,
  rounds: number,
  contender: Contender,
  run: WriteRun,
): string {
  const r = run.round;
  const lock = describeLock({
    heldShare: r.lockHeldShare,
    heldMsPerChange: r.lockHeldMsPerChange,
    waiting: r.lockWaiting,
    holder: r.lockHolder,
  });
  return `  ${service.padEnd(9)} round ${round + 1}/${rounds} ${contender.label.padEnd(26)} ${r.changesPerSecond.toFixed(0).padStart(6)} changes/s (log), ${r.acknowledgedPerSecond.toFixed(0)} acknowledged/s  p50 ${r.p50Ms.toFixed(1)} ms  p99 ${r.p99Ms.toFixed(1)} ms  errors ${r.errors}  cores busy: ${contender.replicas !== undefined ? `services ${r.cpu.services.toFixed(2)}, ` : ""}PostgreSQL ${r.cpu.postgres.toFixed(2)}, client ${r.cpu.client.toFixed(2)}  lock held ${lock}  acknowledged ${run.acknowledged}, committed ${run.committed}${run.firstError ? `  (${run.firstError})` : ""}`;
}

/**
 * Every service's direct SQL at once, `shape.atOnceConnections` connections each, once a round.
 * It runs after every service's own contenders, whose set-up (tables, products) it needs.
 */
async function measureAtOnce(
  sql: Sql,
  contexts: ReadonlyMap<WriteService, Context>,
  shape: WriteCeilingShape,
  log: (line: string) => void,
): Promise<WriteCeilingRow[]> {
  const services = [...contexts.keys()];
  const contender: Contender = {
    key: `at-once-${shape.atOnceConnections}`,
    label: `direct SQL, ${services.join(" and ")} at once, ${shape.atOnceConnections} connections each`,
  };
  const runs = new Map<WriteService, WriteRun[]>(services.map((service) => [service, []]));
  for (let round = 0; round < shape.rounds; round++) {
    const atOnce = await directSqlAtOnce(sql, contexts, shape.atOnceConnections);
    for (const [service, run] of atOnce) {
      runs.get(service)?.push(run);
      log(describeRun(service, round, shape.rounds, contender, run));
    }
    const rates = [...atOnce].map(([service, run]) => ({
      service,
      rate: run.round.changesPerSecond,
    }));
    const sum = rates.reduce((total, { rate }) => total + rate, 0);
    const notify = [...atOnce.values()][0]?.round.notifyLock;
    log(
      `  ${"at once".padEnd(9)} round ${round + 1}/${shape.rounds} ${rates.map(({ service, rate }) => `${service} ${rate.toFixed(0)}`).join(" + ")} = ${sum.toFixed(0)} changes/s  NOTIFY lock held ${notify ? describeLock(notify) : "–"}`,
    );
  }
  return services.map((service) => summarise(service, contender, runs.get(service) ?? []));
}

/**
 * Measures each service's write ceiling: for every round, every contender (the replica counts,
 * then the direct SQL at each number of connections, and without NOTIFY) once, in an order
 * reversed every other round; then every service's direct SQL at once, for every round.
 */
export async function measureWriteCeiling(options: {
  databaseUrl: string;
  pinning: Pinning;
  postgresCpu: (() => number) | undefined;
  shape: WriteCeilingShape;
  log: (line: string) => void;
  nodeFlags?: (name: string) => string[];
  track: (stop: () => Promise<void>) => void;
}): Promise<WriteCeilingResult> {
  const { shape, log } = options;
  // Up to three locks are sampled at once (every service's and the NOTIFY lock, when every
  // service writes at once), besides the reads of the change logs' revisions.
  const sql = postgres(options.databaseUrl, {
    max: 4,
    onnotice: () => {},
    types: { bigint: postgres.BigInt },
  });
  try {
    const [fsync] = await sql<{ fsync: string }[]>`show fsync`;
    const [synchronousCommit] = await sql<{ synchronous_commit: string }[]>`
      show synchronous_commit`;
    const base: Context = { ...options, nodeFlags: options.nodeFlags ?? (() => []), sql, skus: [] };
    const rows: WriteCeilingRow[] = [];
    const contexts = new Map<WriteService, Context>();
    for (const service of shape.services) {
      // One replica on its own first: it applies the service's migrations (and seeds the demo
      // catalog), so that whichever contender runs first finds the tables.
      const [first] = await startReplicas(base, service, 1);
      await first?.stop();
      const workers = Math.max(
        shape.concurrency,
        ...shape.directConnections,
        shape.atOnceConnections,
        shape.withoutNotify?.connections ?? 0,
      );
      const skus = service === "inventory" ? await addBenchProducts(sql, workers) : [];
      const ctx: Context = { ...base, skus };
      contexts.set(service, ctx);
      const contenders = contendersOf(shape, service);
      const runs = new Map<string, WriteRun[]>(contenders.map((c) => [c.key, []]));
      for (let round = 0; round < shape.rounds; round++) {
        const order = round % 2 === 0 ? contenders : [...contenders].reverse();
        for (const contender of order) {
          const run = await runContender(ctx, service, contender);
          runs.get(contender.key)?.push(run);
          log(describeRun(service, round, shape.rounds, contender, run));
        }
      }
      rows.push(...contenders.map((c) => summarise(service, c, runs.get(c.key) ?? [])));
    }
    if (shape.atOnceConnections > 0 && contexts.size > 1) {
      rows.push(...(await measureAtOnce(sql, contexts, shape, log)));
    }
    return {
      database: {
        fsync: fsync?.fsync ?? "unknown",
        synchronousCommit: synchronousCommit?.synchronous_commit ?? "unknown",
      },
      serverCpus: options.pinning.enabled ? options.pinning.serverCpus : "all (not pinned)",
      serverCores: options.pinning.enabled
        ? cpuCount(options.pinning.serverCpus)
        : availableParallelism(),
      lockSampleGapMs: sampleGapMs,
      rows,
    };
  } finally {
    await sql.end();
  }
}
