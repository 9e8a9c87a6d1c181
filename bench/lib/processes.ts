// Starting, pinning, measuring and stopping the processes a benchmark run needs.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { DriverMessage, MemorySample, PeakHeap, ServerMessage } from "../servers/ipc.ts";

/** Cores of the machine, read on import: once this process pins itself it sees only its own. */
const availableCores = availableParallelism();

/** The repository root. */
export const root = fileURLToPath(new URL("../..", import.meta.url));

/** Which cores the servers and the load generator run on, and what could not be done. */
export interface Pinning {
  enabled: boolean;
  /** taskset CPU list of the servers under test ("0"). */
  serverCpus: string;
  /** taskset CPU list of this process and the load tools it starts ("1"). */
  loadCpus: string;
  /** taskset CPU list of the whole machine ("0-1"): for what runs as a person runs it (npm start). */
  allCpus: string;
  /** A sentence for the report. */
  note: string;
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Pins this process (every thread, so the load tools and clients it starts inherit it) to the last
 * core and reserves the first for the servers, when there are at least two cores and taskset.
 * Processes started before this call (PostgreSQL) keep running on every core.
 */
export function pinSelf(): Pinning {
  const cores = availableCores;
  if (cores < 2) {
    return {
      enabled: false,
      serverCpus: "",
      loadCpus: "",
      allCpus: "",
      note: `not pinned: only ${cores} core available; servers and load share it`,
    };
  }
  if (!hasTaskset()) {
    return {
      enabled: false,
      serverCpus: "",
      loadCpus: "",
      allCpus: "",
      note: "not pinned: taskset (util-linux) is missing; servers and load share all cores",
    };
  }
  const loadCpus = String(cores - 1);
  const allCpus = `0-${cores - 1}`;
  const serverCpus = cores === 2 ? "0" : `0-${cores - 2}`;
  try {
    execFileSync("taskset", ["-a", "-cp", loadCpus, String(process.pid)], { stdio: "ignore" });
  } catch (error) {
    return {
      enabled: false,
      serverCpus: "",
      loadCpus: "",
      allCpus: "",
      note: `not pinned: taskset failed (${(error as Error).message.split("\n")[0]})`,
    };
  }
  return {
    enabled: true,
    serverCpus,
    loadCpus,
    allCpus,
    note: `servers on CPU ${serverCpus}, load generator and clients on CPU ${loadCpus}, PostgreSQL unpinned`,
  };
}

/** `command args` wrapped in taskset for `cpus` when pinning is on. */
export function pinnedCommand(
  pinning: Pinning,
  cpus: string,
  command: string,
  args: readonly string[],
): [string, string[]] {
  return pinning.enabled ? ["taskset", ["-c", cpus, command, ...args]] : [command, [...args]];
}

/**
 * The environment of a child: this one without OTEL_* (telemetry stays off), with authentication
 * off (the peers check no tokens either: the same work) and room for the fan-out's 1,000 watches
 * from one client, plus `extra`.
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("OTEL_")) env[key] = value;
  }
  return { ...env, AUTH: "off", MAX_WATCHES_PER_CLIENT: "100000", ...extra };
}

/** Resident set size of `pid` in bytes, from /proc (0 where /proc is missing). */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A benchmark server process speaking the IPC of bench/servers/ipc.ts. */
export interface ServerProcess {
  name: string;
  pid: number;
  port: number;
  url: string;
  /** Where it serves HTTP/1.1 on a port of its own, if it does (raw-http2.ts --also-http1). */
  http1Url?: string;
  /** Milliseconds from spawn until it reported listening. */
  startMs: number;
  /** Memory after a full GC, as the process reports it. */
  memory(): Promise<MemorySample>;
  /**
   * The most heap in use since the previous call, and starts counting anew; with
   * `collectEveryMs`, the heap held is sampled from then on after a full GC forced that often.
   */
  peakHeap(collectEveryMs?: number): Promise<PeakHeap>;
  /** Starts sampling what it allocates; with `file`, stops and writes the profile there. */
  sampleAllocations(file?: string): Promise<void>;
  /** Asks it to close and exit, and waits (killing it after 5 s). */
  stop(): Promise<void>;
}

/**
 * Starts `bench/servers/<script>` on the server cores with --expose-gc and `nodeFlags`, and waits
 * until it reports its port.
 */
export async function startServer(options: {
  name: string;
  script: string;
  args?: readonly string[];
  env?: Record<string, string>;
  pinning: Pinning;
  nodeFlags?: readonly string[];
}): Promise<ServerProcess> {
  const started = performance.now();
  const [command, args] = pinnedCommand(
    options.pinning,
    options.pinning.serverCpus,
    process.execPath,
    [
      "--expose-gc",
      ...(options.nodeFlags ?? []),
      path.join(root, "bench", "servers", options.script),
      ...(options.args ?? []),
    ],
  );
  const child = spawn(command, args, {
    cwd: root,
    env: childEnv({ PORT: "0", HOST: "127.0.0.1", ...options.env }),
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const { port, http1Port } = await new Promise<{ port: number; http1Port?: number }>(
    (resolve, reject) => {
      const onMessage = (message: ServerMessage) => {
        if (message.type === "ready") {
          child.off("exit", onExit);
          child.off("message", onMessage);
          resolve(message);
        } else if (message.type === "failed") {
          reject(new Error(`${options.name} failed to start:\n${message.error}`));
        }
      };
      const onExit = (code: number | null) =>
        reject(new Error(`${options.name} exited with ${code} before listening`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    },
  );
  const startMs = performance.now() - started;
  return {
    name: options.name,
    pid: child.pid ?? 0,
    port,
    url: `http://127.0.0.1:${port}`,
    http1Url: http1Port === undefined ? undefined : `http://127.0.0.1:${http1Port}`,
    startMs,
    memory: () => askMemory(child),
    peakHeap: (collectEveryMs) => askPeakHeap(child, collectEveryMs),
    sampleAllocations: async (file) => {
      await ask(child, { type: "allocations", file });
    },
    stop: () => stopChild(child, { type: "stop" }),
  };
}

/** Sends `question` to a server process and waits for its answer of the same type. */
function ask<T extends ServerMessage["type"]>(
  child: ChildProcess,
  question: DriverMessage & { type: T },
): Promise<Extract<ServerMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${question.type} answer within 10 s`)),
      10_000,
    );
    const onMessage = (message: ServerMessage) => {
      if (message.type !== question.type) return;
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(message as Extract<ServerMessage, { type: T }>);
    };
    child.on("message", onMessage);
    child.send(question);
  });
}

async function askMemory(child: ChildProcess): Promise<MemorySample> {
  const { type: _type, ...sample } = await ask(child, { type: "memory" });
  return sample;
}

async function askPeakHeap(child: ChildProcess, collectEveryMs?: number): Promise<PeakHeap> {
  const { type: _type, ...peak } = await ask(child, { type: "peak", collectEveryMs });
  return peak;
}

/** Sends `message` (or SIGTERM when none) and waits for the exit, with SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess, message?: DriverMessage): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  if (message && child.connected) child.send(message);
  else child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

const ticksPerSecond = 100;

/** CPU time (user + system) `pid` has used so far, in seconds (0 where /proc is missing). */
export function cpuSecondsOf(pid: number): number {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / ticksPerSecond : 0;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces), from field 3. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * A function that returns the CPU time, in seconds, of the PostgreSQL server whose data folder is
 * `dataDir`: its postmaster (with the backends it has reaped) and its live children. Other
 * PostgreSQL servers on the machine are not counted. Returns undefined when it cannot be found.
 */
export function postgresCpu(dataDir: string): (() => number) | undefined {
  let postmaster: number | undefined;
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
        if (args[0]?.endsWith("/postgres") && args.includes(dataDir)) postmaster = Number(entry);
      } catch {
        // The process ended meanwhile.
      }
    }
  } catch {
    return undefined;
  }
  if (postmaster === undefined) return undefined;
  const parent = String(postmaster);
  return () => {
    const own = statFields(parent);
    let total = own ? Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]) : 0;
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const fields = statFields(entry);
      // Field 4 (index 1 here) is the parent's pid.
      if (fields?.[1] === parent) total += Number(fields[11]) + Number(fields[12]);
    }
    return total / ticksPerSecond;
  };
}

/**
 * CPU seconds the whole machine has spent running processes (all cores; idle, I/O wait,
 * interrupts and time stolen by the hypervisor excluded, since no process is charged for them).
 */
function machineBusySeconds(): number {
  try {
    const [line] = readFileSync("/proc/stat", "utf8").split("\n");
    const fields = (line ?? "").trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0] = fields;
    return (user + nice + system) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of this process and every process it started, live or already reaped. */
function ownTreeSeconds(): number {
  const parents = new Map<string, string>();
  const seconds = new Map<string, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (!fields) continue;
    parents.set(entry, fields[1] ?? "");
    seconds.set(
      entry,
      (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) /
        ticksPerSecond,
    );
  }
  const self = String(process.pid);
  let total = 0;
  for (const [pid, cpu] of seconds) {
    let current: string | undefined = pid;
    for (let depth = 0; current !== undefined && depth < 64; depth++) {
      if (current === self) {
        total += cpu;
        break;
      }
      current = parents.get(current);
    }
  }
  return total;
}

/** What else ran on the machine while a benchmark did. */
export interface ForeignLoad {
  /** CPU seconds used by processes the benchmark did not start. */
  seconds: number;
  /** The same as a share of all cores over the time measured (0..1). */
  share: number;
}

/**
 * Starts measuring the CPU that processes other than this one and its descendants use; the
 * returned function tells how much they used since. Anything else busy on the machine (another
 * test run, say) skews the figures, so the report says how much there was.
 */
export function measureForeignLoad(): () => ForeignLoad {
  const started = performance.now();
  const machineBefore = machineBusySeconds();
  const ownBefore = ownTreeSeconds();
  return () => {
    const seconds = Math.max(
      0,
      machineBusySeconds() - machineBefore - (ownTreeSeconds() - ownBefore),
    );
    const capacity = ((performance.now() - started) / 1000) * availableCores;
    return { seconds: Math.round(seconds * 10) / 10, share: capacity > 0 ? seconds / capacity : 0 };
  };
}
