// The child side of the benchmark's server processes: tells the driver when it listens, answers
// memory queries (after a full GC when the process runs with --expose-gc), and exits on request,
// cleanly, so that --cpu-prof writes its profile; and samples what it allocates when asked.

import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { percentile, sortedSamples } from "../lib/stats.ts";

/** Memory of a server process, as the driver asks for it. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** The most heap a process used between two questions. */
export interface PeakHeap {
  /**
   * Sampled every 10 ms, garbage included: what V8 let the heap grow to (in a process started
   * with --sample-heap=on; otherwise the heap in use when asked).
   */
  heapUsed: number;
  /** Right after full GCs forced every `collectEveryMs` (when asked): what was really held. */
  liveHeap: number;
  /**
   * The 95th percentile of those held-heap samples. Unlike the most, it does not grow with the
   * number of samples: a longer storm of the same memory use draws more samples, and the most of
   * more samples lies further out in the same distribution, while its percentiles stay put.
   */
  liveHeapP95: number;
}

/** A message from the driver to a server process. */
export type DriverMessage =
  | { type: "memory" }
  | { type: "peak"; collectEveryMs?: number }
  /** Starts sampling allocations; with `file`, stops and writes the profile there. */
  | { type: "allocations"; file?: string }
  | { type: "stop" };

/** A message from a server process to the driver. */
export type ServerMessage =
  | { type: "ready"; port: number; http1Port?: number }
  | ({ type: "memory" } & MemorySample)
  | ({ type: "peak" } & PeakHeap)
  | { type: "allocations" }
  | { type: "failed"; error: string };

function send(message: ServerMessage): void {
  process.send?.(message);
}

/**
 * Reports `port` (and `http1Port`, where HTTP/1.1 is served apart) to the driver and serves its
 * queries until it asks to stop; `stop` closes the server first.
 */
export function reportReady(port: number, stop: () => Promise<void>, http1Port?: number): void {
  // The most heap in use between two "peak" questions: sampled every 10 ms (garbage included), and,
  // when the question asked for it, right after a full GC forced every so often (what was held).
  // Only in a process started with --sample-heap=on (the snapshot storm's): every other server of
  // a run waits on the servers' core while one is measured, and ten of them waking a hundred times
  // a second took 14-19 % of the rate of the one under load (Connect JSON, ours and raw node:http).
  let peak = 0;
  let livePeak = 0;
  let liveSamples: number[] = [];
  let collector: NodeJS.Timeout | undefined;
  if (argument("sample-heap", "off") === "on") {
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 10);
    sampler.unref();
  }
  process.on("message", (message: DriverMessage) => {
    if (message.type === "peak") {
      send({
        type: "peak",
        heapUsed: Math.max(peak, process.memoryUsage().heapUsed),
        liveHeap: livePeak,
        liveHeapP95: liveSamples.length === 0 ? 0 : percentile(sortedSamples(liveSamples), 95),
      });
      peak = 0;
      livePeak = 0;
      liveSamples = [];
      clearInterval(collector);
      const collect = (globalThis as { gc?: () => void }).gc;
      if (message.collectEveryMs !== undefined && collect) {
        collector = setInterval(() => {
          collect();
          const held = process.memoryUsage().heapUsed;
          livePeak = Math.max(livePeak, held);
          liveSamples.push(held);
        }, message.collectEveryMs);
        collector.unref();
      }
      return;
    }
    if (message.type === "allocations") {
      sampleAllocations(message.file).then(
        () => send({ type: "allocations" }),
        (error: unknown) => {
          // stderr is the driver's: the person running it sees why.
          console.error(error);
          process.exit(1);
        },
      );
      return;
    }
    if (message.type === "memory") {
      const collect = (globalThis as { gc?: () => void }).gc;
      collect?.();
      collect?.();
      const usage = process.memoryUsage();
      send({
        type: "memory",
        rss: usage.rss,
        heapUsed: usage.heapUsed,
        heapTotal: usage.heapTotal,
        external: usage.external,
        arrayBuffers: usage.arrayBuffers,
      });
    } else if (message.type === "stop") {
      const timer = setTimeout(() => process.exit(0), 3_000);
      stop().finally(() => {
        clearTimeout(timer);
        process.exit(0);
      });
    }
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", port, http1Port });
}

let sampling: Session | undefined;

/**
 * Starts V8's sampling heap profiler (an allocation in every 1 KiB or so, with its stack), keeping
 * the samples of objects the collector frees: what the process allocates, not what it holds.
 * With `file`, stops it and writes the profile there (.heapprofile, which Chrome DevTools reads).
 */
async function sampleAllocations(file: string | undefined): Promise<void> {
  if (file === undefined) {
    if (sampling !== undefined) throw new Error("allocations are being sampled already");
    sampling = new Session();
    sampling.connect();
    // The two include… flags are V8's (HeapProfiler.startSampling) and not in @types/node yet.
    await sampling.post("HeapProfiler.startSampling", {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as { samplingInterval: number });
    return;
  }
  if (sampling === undefined) throw new Error("allocations were not being sampled");
  const { profile } = await sampling.post("HeapProfiler.stopSampling");
  writeFileSync(file, JSON.stringify(profile));
  sampling.disconnect();
  sampling = undefined;
}

/** Reports a start-up failure to the driver and exits. */
export function reportFailure(error: unknown): never {
  send({
    type: "failed",
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exit(1);
}

/** The value of `--name=value` on the command line, or `fallback`. */
export function argument(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  const found = process.argv.find((arg) => arg.startsWith(prefix));
  return found === undefined ? fallback : found.slice(prefix.length);
}
