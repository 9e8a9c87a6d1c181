// Runs permutations against started targets with bounded concurrency and tallies the outcomes per
// suite and per permutation group (protocol and HTTP version), with known failures set apart.
import { readFileSync } from "node:fs";
import { Protocol } from "@shop/api/connectrpc/conformance/v1/config_pb";
import { parse as parseYaml } from "yaml";
import type { ConformanceTarget, StartTarget, TargetOptions } from "../target.ts";
import { createTlsMaterial } from "../tls-material.ts";
import { check } from "./check.ts";
import { type ClientCredentials, connectTo, send, type TargetConnections } from "./client.ts";
import { type Permutation, serverReceiveLimit } from "./suites.ts";

/** A test-name pattern expected to fail, and why (an entry of `conformance/known-failures.yaml`). */
export interface KnownFailure {
  /** `*` matches within one name component, `**` across components. */
  test: string;
  /** Which target it applies to (`mesh` or `control`); absent: both. */
  target?: string;
  why: string;
}

/** Reads the known-failures file: a YAML list of `{test, target?, why}` (an empty list is fine). */
export function loadKnownFailures(file: string): KnownFailure[] {
  const parsed = parseYaml(readFileSync(file, "utf8")) as unknown;
  if (parsed === null || parsed === undefined) return [];
  if (!Array.isArray(parsed)) throw new Error(`${file}: expecting a list`);
  return parsed.map((entry, i) => {
    const e = entry as Partial<KnownFailure>;
    if (typeof e.test !== "string" || typeof e.why !== "string" || e.why.trim() === "") {
      throw new Error(`${file}: entry #${i + 1} needs a test pattern and a why`);
    }
    return { test: e.test, target: e.target, why: e.why };
  });
}

function patternRegex(pattern: string): RegExp {
  const escaped = pattern
    .split("**")
    .map((part) =>
      part
        .split("*")
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^/]*"),
    )
    .join(".*");
  return new RegExp(`^${escaped}$`);
}

/** The outcome of one permutation. */
export interface Outcome {
  perm: Permutation;
  status: "passed" | "failed" | "known-failure" | "skipped";
  errors: string[];
  /** Why it was skipped or expected to fail. */
  note?: string;
}

/** A kind of target: a key for the command line and the known-failures file, and how to start it. */
export interface TargetKind {
  key: string;
  start: StartTarget;
}

/** The permutation group an outcome is tallied under in the per-suite line. */
export function groupOf(perm: Permutation): string {
  const protocol =
    perm.request.protocol === Protocol.CONNECT
      ? "connect"
      : perm.request.protocol === Protocol.GRPC
        ? "grpc"
        : "grpc-web";
  return `${protocol}/h${perm.request.httpVersion}`;
}

function skipReason(target: ConformanceTarget, perm: Permutation): string | undefined {
  const version = perm.request.httpVersion as 1 | 2;
  if (perm.useTls) {
    if (target.tlsUrl === undefined) return "the target serves no TLS";
    if (!target.httpVersions.tls.includes(version)) return `no HTTP/${version} over TLS`;
    if (perm.useTlsClientCerts && !target.verifiesClientCerts) return "no client certificates";
  } else if (!target.httpVersions.cleartext.includes(version)) {
    return `no cleartext HTTP/${version}`;
  }
  return undefined;
}

/** Options of one run against one kind of target. */
export interface RunOptions {
  kind: TargetKind;
  permutations: Permutation[];
  knownFailures: KnownFailure[];
  concurrency: number;
  /** Called as each permutation ends (progress, verbose output). */
  onOutcome?: (outcome: Outcome) => void;
}

/**
 * Starts the kind of target once per distinct set of options the permutations need (TLS always,
 * with the official runner's 200 KiB receive limit; client certificates for the suites relying on
 * them), sends every permutation and judges the answers.
 */
export async function runAgainst(options: RunOptions): Promise<Outcome[]> {
  const known = options.knownFailures
    .filter((k) => k.target === undefined || k.target === options.kind.key)
    .map((k) => ({ ...k, regex: patternRegex(k.test) }));
  const needsClientCerts = options.permutations.some((p) => p.useTlsClientCerts);
  const material = needsClientCerts ? await createTlsMaterial() : undefined;
  const credentials: ClientCredentials | undefined = material?.client;
  const plain: TargetOptions = { tls: true, messageReceiveLimit: serverReceiveLimit };
  const started: { target: ConformanceTarget; connections: TargetConnections }[] = [];
  const open = async (targetOptions: TargetOptions, creds?: ClientCredentials) => {
    const target = await options.kind.start(targetOptions);
    const connections = connectTo(target, creds);
    started.push({ target, connections });
    return connections;
  };
  try {
    const withoutCerts = options.permutations.some((p) => !p.useTlsClientCerts)
      ? await open(plain)
      : undefined;
    const withCerts = material
      ? await open({ ...plain, clientCaCertPem: material.caCertPem }, credentials)
      : undefined;
    const outcomes: Outcome[] = new Array(options.permutations.length);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const index = next++;
        const perm = options.permutations[index];
        if (perm === undefined) return;
        const connections = perm.useTlsClientCerts ? withCerts : withoutCerts;
        if (connections === undefined) throw new Error("no target for the permutation");
        const outcome = await runOne(connections, perm, known);
        outcomes[index] = outcome;
        options.onOutcome?.(outcome);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
    return outcomes;
  } finally {
    for (const { target, connections } of started) {
      connections.close();
      await target.close();
    }
  }
}

async function runOne(
  connections: TargetConnections,
  perm: Permutation,
  known: (KnownFailure & { regex: RegExp })[],
): Promise<Outcome> {
  const reason = skipReason(connections.target, perm);
  if (reason !== undefined) return { perm, status: "skipped", errors: [], note: reason };
  let errors: string[];
  try {
    const actual = await send(connections, perm);
    errors = check(perm, actual);
  } catch (e) {
    errors = [`runner error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`];
  }
  const expectedFailure = known.find((k) => k.regex.test(perm.name));
  if (expectedFailure !== undefined) {
    if (errors.length === 0) {
      return {
        perm,
        status: "failed",
        errors: [`listed as a known failure (${expectedFailure.test}) but passed`],
      };
    }
    return { perm, status: "known-failure", errors, note: expectedFailure.why };
  }
  return { perm, status: errors.length === 0 ? "passed" : "failed", errors };
}

interface Tally {
  passed: number;
  failed: number;
  known: number;
  skipped: number;
}

function emptyTally(): Tally {
  return { passed: 0, failed: 0, known: 0, skipped: 0 };
}

function add(t: Tally, o: Outcome): void {
  if (o.status === "passed") t.passed++;
  else if (o.status === "failed") t.failed++;
  else if (o.status === "known-failure") t.known++;
  else t.skipped++;
}

function formatTally(t: Tally): string {
  return `${t.passed}/${t.failed}/${t.skipped}${t.known > 0 ? ` (+${t.known} known)` : ""}`;
}

/**
 * The report: one line per suite with passed/failed/skipped per permutation group, then a total
 * with the number of permutations run.
 */
export function report(targetName: string, outcomes: Outcome[]): { lines: string[]; total: Tally } {
  const bySuite = new Map<string, { all: Tally; groups: Map<string, Tally> }>();
  const total = emptyTally();
  for (const o of outcomes) {
    let suite = bySuite.get(o.perm.suite);
    if (suite === undefined) {
      suite = { all: emptyTally(), groups: new Map() };
      bySuite.set(o.perm.suite, suite);
    }
    const group = groupOf(o.perm);
    let g = suite.groups.get(group);
    if (g === undefined) {
      g = emptyTally();
      suite.groups.set(group, g);
    }
    add(g, o);
    add(suite.all, o);
    add(total, o);
  }
  const width = Math.max(...[...bySuite.keys()].map((k) => k.length), 5);
  const lines = [`${targetName} (passed/failed/skipped per protocol/HTTP version)`];
  for (const [name, suite] of bySuite) {
    const groups = [...suite.groups]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([g, t]) => `${g} ${formatTally(t)}`)
      .join("  ");
    lines.push(`  ${name.padEnd(width)}  ${formatTally(suite.all).padEnd(22)} ${groups}`);
  }
  const ran = total.passed + total.failed + total.known;
  lines.push(
    `  ${"total".padEnd(width)}  ${ran} permutations run: ${total.passed} passed, ${total.failed} failed, ${total.known} known failures, ${total.skipped} skipped`,
  );
  return { lines, total };
}
