// Unary GetUser under load from h2load (gRPC, gRPC-web and Connect binary over h2c) and wrk (Connect JSON over
// HTTP/1.1), against several servers in alternation: each round runs every target once, in the order
// `roundOrder` gives that round, and the report takes the median of the rounds. Beside each round's
// rate, the server's CPU time per call over the measured time (from /proc): what a server pays for
// a call, whatever limits the rate (the load generator shares a core with nothing of the server's,
// but may be what holds a fast server back).
import type { User } from "@shop/api/shop/user/v1/user_pb";
import { h1Load, h2Load, type LoadResult, type LoadTarget, type Tools } from "../lib/load.ts";
import { cpuSecondsOf } from "../lib/processes.ts";
import {
  getUserRequestBytes,
  getUserRequestJson,
  grpcFrame,
  userServicePath,
} from "../lib/requests.ts";
import { median } from "../lib/stats.ts";
import {
  assertSameUser,
  verifyConnectBinary,
  verifyConnectJson,
  verifyGrpc,
  verifyGrpcWeb,
} from "../lib/verify.ts";

/** The wire protocols of the unary scenarios. */
export type UnaryProtocol = "grpc" | "grpc-web" | "connect-binary" | "connect-json";

/** The request of GetUser(`id`) in `protocol`, addressed to `url`. */
export function getUserTarget(protocol: UnaryProtocol, url: string, id: string): LoadTarget {
  const path = userServicePath("GetUser");
  if (protocol === "grpc") {
    return {
      url,
      path,
      body: grpcFrame(getUserRequestBytes(id)),
      headers: { "content-type": "application/grpc", te: "trailers" },
    };
  }
  if (protocol === "grpc-web") {
    return {
      url,
      path,
      body: grpcFrame(getUserRequestBytes(id)),
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
    };
  }
  if (protocol === "connect-binary") {
    return {
      url,
      path,
      body: getUserRequestBytes(id),
      headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
    };
  }
  return {
    url,
    path,
    body: Buffer.from(getUserRequestJson(id)),
    headers: { "content-type": "application/json", "connect-protocol-version": "1" },
  };
}

/** One server of a unary scenario. */
export interface UnaryTarget {
  key: string;
  label: string;
  target: LoadTarget;
  /** The user its answer must carry. */
  expected: User;
  /** The server's process, whose CPU time per call is measured. */
  pid?: number;
}

/** One round of one target: the load's figures, and the server's CPU time per call. */
export interface UnaryRound extends LoadResult {
  /** Microseconds of the server process's CPU time (user and system) per successful call. */
  serverCpuUs?: number;
}

/** The medians of one target over the rounds, and every round. */
export interface UnaryRow {
  key: string;
  label: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  tool: string;
  /** The median of the rounds' server CPU time per call, in microseconds. */
  serverCpuUs?: number;
  rounds: UnaryRound[];
}

/** A ratio between two rows (or a goal of issue 7 when it has a target). */
export interface Ratio {
  name: string;
  /** What is compared: requests per second (the default), or the server's CPU time per call. */
  of?: "rps" | "cpu";
  /**
   * The median of the rounds' own ratios, both figures measured in the same round (what a target
   * is judged on; the servers a goal compares run back to back in each round).
   */
  value: number;
  /** The ratio of the two rows' medians, for comparison (what targets were judged on until 2026-12-07). */
  ofMedians?: number;
  /** ">= 0.7", say. */
  target?: string;
}

/**
 * The ratio of row `a` to row `b` of `rows`: in requests per second, or (`of: "cpu"`) in the
 * server's CPU time per call, where lower is cheaper.
 */
export function ratioOf(
  rows: readonly UnaryRow[],
  name: string,
  a: string,
  b: string,
  target?: string,
  of: "rps" | "cpu" = "rps",
): Ratio {
  const figure = (measured: UnaryRow | UnaryRound | undefined) =>
    (of === "cpu" ? measured?.serverCpuUs : measured?.rps) ?? Number.NaN;
  const rowA = rows.find((row) => row.key === a);
  const rowB = rows.find((row) => row.key === b);
  if (!rowA || !rowB) return { name, of, value: Number.NaN, target };
  const value = median(
    rowA.rounds.map((round, index) => figure(round) / figure(rowB.rounds[index])),
  );
  return { name, of, value, ofMedians: figure(rowA) / figure(rowB), target };
}

/** One protocol's table: its rows and the ratios between them. */
export interface UnaryScenario {
  name: string;
  protocol: UnaryProtocol;
  /** The tool and the load shape. */
  load: string;
  rows: UnaryRow[];
  ratios: Ratio[];
}

/** How hard and how long to load. */
export interface UnaryShape {
  rounds: number;
  seconds: number;
  /** Warm-up before each measured run; the first round adds `firstWarmupSeconds` for the JIT. */
  warmupSeconds: number;
  firstWarmupSeconds: number;
  h2Clients: number;
  h2Streams: number;
  h1Connections: number;
}

async function verify(protocol: UnaryProtocol, target: UnaryTarget): Promise<void> {
  const check =
    protocol === "grpc"
      ? verifyGrpc
      : protocol === "grpc-web"
        ? verifyGrpcWeb
        : protocol === "connect-binary"
          ? verifyConnectBinary
          : verifyConnectJson;
  const user = await check(target.target);
  assertSameUser(user, target.expected, `${target.label} (${protocol})`);
}

/**
 * The order of `targets` in round `round`: the first round as given, then shuffled, the same for
 * every run (a fixed seed per round). A rotation would keep each target behind the same neighbour
 * in every round, and what a neighbour leaves behind (PostgreSQL's background work after a
 * PostgreSQL-backed target, say) would then always fall on the same server.
 *
 * The targets named in `together` (the servers a goal compares) run one right after the other, in
 * that order in even rounds and in the reverse order in odd ones, and move as one block in the
 * shuffle: a slow spell of the machine then mostly falls on both servers of a comparison, not on
 * one of them, and neither is always the first.
 */
export function roundOrder<T extends { key: string }>(
  targets: readonly T[],
  round: number,
  together: readonly string[] = [],
): T[] {
  const block = together
    .map((key) => targets.find((target) => target.key === key))
    .filter((target) => target !== undefined);
  if (round % 2 === 1) block.reverse();
  // The block takes the place of its first member in the given order.
  const units: T[][] = [];
  let placed = false;
  for (const target of targets) {
    if (!together.includes(target.key)) units.push([target]);
    else if (!placed) {
      units.push(block);
      placed = true;
    }
  }
  // A small linear congruential generator (Numerical Recipes' constants): reproducible, and
  // nothing here needs better randomness.
  let seed = (round + 1) * 2654435761;
  const next = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  if (round > 0) {
    for (let i = units.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [units[i], units[j]] = [units[j] as T[], units[i] as T[]];
    }
  }
  return units.flat();
}

/**
 * Runs `targets` in alternation for `shape.rounds` rounds, those in `together` back to back (see
 * `roundOrder`); every target is verified first and last.
 */
export async function runUnary(options: {
  protocol: UnaryProtocol;
  targets: readonly UnaryTarget[];
  /** The keys of the targets a goal compares, run one right after the other in every round. */
  together?: readonly string[];
  shape: UnaryShape;
  tools: Tools;
  log: (line: string) => void;
}): Promise<UnaryRow[]> {
  const { protocol, targets, together, shape, tools, log } = options;
  for (const target of targets) await verify(protocol, target);
  const results = new Map<string, UnaryRound[]>(targets.map((target) => [target.key, []]));
  const load = (target: UnaryTarget, seconds: number) =>
    protocol === "connect-json"
      ? h1Load(tools, target.target, {
          connections: shape.h1Connections,
          seconds,
          warmupSeconds: 0,
        })
      : h2Load(tools, target.target, {
          clients: shape.h2Clients,
          streams: shape.h2Streams,
          seconds,
          warmupSeconds: 0,
        });
  for (let round = 0; round < shape.rounds; round++) {
    const order = roundOrder(targets, round, together);
    for (const target of order) {
      // The warm-up is a run of its own, so that the server's CPU time is read over the measured
      // run alone.
      const warmupSeconds = shape.warmupSeconds + (round === 0 ? shape.firstWarmupSeconds : 0);
      if (warmupSeconds > 0) await load(target, warmupSeconds);
      const cpuBefore = target.pid === undefined ? undefined : cpuSecondsOf(target.pid);
      const measured = await load(target, shape.seconds);
      const result: UnaryRound =
        target.pid === undefined || cpuBefore === undefined || measured.requests === 0
          ? measured
          : {
              ...measured,
              serverCpuUs: ((cpuSecondsOf(target.pid) - cpuBefore) * 1e6) / measured.requests,
            };
      results.get(target.key)?.push(result);
      log(
        `  round ${round + 1}/${shape.rounds} ${target.label.padEnd(28)} ${Math.round(result.rps)
          .toString()
          .padStart(
            7,
          )} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms${result.serverCpuUs === undefined ? "" : `  server CPU ${result.serverCpuUs.toFixed(1)} µs/call`}${result.errors > 0 ? `  ERRORS ${result.errors}` : ""}`,
      );
    }
  }
  for (const target of targets) await verify(protocol, target);
  return targets.map((target) => {
    const rounds = results.get(target.key) ?? [];
    return {
      key: target.key,
      label: target.label,
      rps: median(rounds.map((r) => r.rps)),
      p50Ms: median(rounds.map((r) => r.p50Ms)),
      p99Ms: median(rounds.map((r) => r.p99Ms)),
      errors: rounds.reduce((sum, r) => sum + r.errors, 0),
      tool: rounds[0]?.tool ?? "",
      serverCpuUs: rounds.every((r) => r.serverCpuUs !== undefined)
        ? median(rounds.map((r) => r.serverCpuUs as number))
        : undefined,
      rounds,
    };
  });
}
