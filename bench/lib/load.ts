// Drives load with tools nobody here wrote: h2load (nghttp2-client) for HTTP/2 cleartext, wrk for
// HTTP/1.1. Where one is missing it falls back (bench/lib/node-h2load.ts, autocannon) and says so
// in the result's `tool`.
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import autocannon from "autocannon";
import { root } from "./processes.ts";
import { percentile, sortedSamples } from "./stats.ts";

const run = promisify(execFile);

/** What one measured load run gave. */
export interface LoadResult {
  /** The tool and version that produced the load. */
  tool: string;
  /** Requests completed successfully during the measured time. */
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed requests, non-2xx answers and socket errors. */
  errors: number;
}

/** A request as the load tools send it. */
export interface LoadTarget {
  /** Base URL of the server, `http://127.0.0.1:port`. */
  url: string;
  path: string;
  body: Uint8Array;
  headers: Record<string, string>;
}

/** The version line of `command`, or undefined when it is not installed. */
function versionOf(command: string, args: string[]): string | undefined {
  try {
    const output = execFileSync(command, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return output.split("\n")[0]?.trim();
  } catch (error) {
    const output = String((error as { stdout?: string }).stdout ?? "");
    return output.trim() === "" ? undefined : output.split("\n")[0]?.trim();
  }
}

/** The load tools found on this machine. */
export interface Tools {
  h2load: string | undefined;
  wrk: string | undefined;
}

/** Looks for h2load and wrk. */
export function findTools(): Tools {
  // wrk's version line goes on with "[epoll] Copyright ...".
  const wrk = versionOf("wrk", ["--version"])?.split(" [")[0];
  return { h2load: versionOf("h2load", ["--version"]), wrk };
}

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), "shop-bench-"));
}

/**
 * HTTP/2 cleartext load: `clients` connections with `streams` requests in flight on each, a warm-up,
 * then `seconds` measured. Latency percentiles come from h2load's per-request log.
 */
export async function h2Load(
  tools: Tools,
  target: LoadTarget,
  shape: { clients: number; streams: number; seconds: number; warmupSeconds: number },
): Promise<LoadResult> {
  if (!tools.h2load) return nodeH2Load(target, shape);
  const dir = scratch();
  try {
    const bodyFile = path.join(dir, "body");
    const logFile = path.join(dir, "log");
    writeFileSync(bodyFile, target.body);
    const headerArgs = Object.entries(target.headers).flatMap(([name, value]) => [
      "-H",
      `${name}: ${value}`,
    ]);
    const { stdout } = await run(
      "h2load",
      [
        "-c",
        String(shape.clients),
        "-m",
        String(shape.streams),
        "-t",
        "1",
        "-D",
        String(shape.seconds),
        "--warm-up-time",
        String(shape.warmupSeconds),
        "-d",
        bodyFile,
        ...headerArgs,
        "--log-file",
        logFile,
        `${target.url}${target.path}`,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const done =
      /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
        stdout,
      );
    const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
    const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(stdout);
    if (!done || !codes || !finished) throw new Error(`could not read h2load's output:\n${stdout}`);
    const latencies: number[] = [];
    for (const line of readFileSync(logFile, "utf8").split("\n")) {
      const [, status, micros] = line.split("\t");
      if (status === "200" && micros !== undefined) latencies.push(Number(micros) / 1000);
    }
    const sorted = sortedSamples(latencies);
    const seconds = Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1);
    const succeeded = Number(done[2]);
    return {
      tool: tools.h2load,
      requests: succeeded,
      seconds,
      rps: Number(finished[3]),
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      errors:
        Number(done[3]) + Number(done[4]) + Number(done[5]) + Number(codes[3]) + Number(codes[4]),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function nodeH2Load(
  target: LoadTarget,
  shape: { clients: number; streams: number; seconds: number; warmupSeconds: number },
): Promise<LoadResult> {
  const options = {
    url: target.url,
    path: target.path,
    body: Buffer.from(target.body).toString("base64"),
    headers: target.headers,
    ...shape,
  };
  const { stdout } = await run(
    process.execPath,
    [path.join(root, "bench", "lib", "node-h2load.ts"), JSON.stringify(options)],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as { seconds: number; errors: number; latencies: number[] };
  const sorted = sortedSamples(result.latencies);
  return {
    tool: "node:http2 fallback load generator (h2load not found: apt-get install nghttp2-client)",
    requests: sorted.length,
    seconds: result.seconds,
    rps: sorted.length / result.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: result.errors,
  };
}

function luaString(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;
}

function wrkDuration(value: string, unit: string): number {
  const factor = unit === "us" ? 0.001 : unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000;
  return Number(value) * factor;
}

/** HTTP/1.1 load: `connections` keep-alive connections, one request in flight on each. */
export async function h1Load(
  tools: Tools,
  target: LoadTarget,
  shape: { connections: number; seconds: number; warmupSeconds: number },
): Promise<LoadResult> {
  const body = Buffer.from(target.body).toString("utf8");
  if (!tools.wrk) return autocannonLoad(target, body, shape);
  const dir = scratch();
  try {
    const script = path.join(dir, "request.lua");
    writeFileSync(
      script,
      [
        'wrk.method = "POST"',
        `wrk.body = ${luaString(body)}`,
        ...Object.entries(target.headers).map(
          ([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`,
        ),
        "",
      ].join("\n"),
    );
    const url = `${target.url}${target.path}`;
    const common = ["-t", "1", "-c", String(shape.connections), "-s", script];
    if (shape.warmupSeconds > 0) {
      await run("wrk", [...common, "-d", `${shape.warmupSeconds}s`, url]);
    }
    const { stdout } = await run("wrk", [...common, "-d", `${shape.seconds}s`, "--latency", url]);
    const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(stdout);
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
    const p50 = /\s50%\s+([\d.]+)(us|ms|s|m)/.exec(stdout);
    const p99 = /\s99%\s+([\d.]+)(us|ms|s|m)/.exec(stdout);
    if (!total || !rps || !p50 || !p99) throw new Error(`could not read wrk's output:\n${stdout}`);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
      stdout,
    );
    const socketErrors = socket
      ? Number(socket[1]) + Number(socket[2]) + Number(socket[3]) + Number(socket[4])
      : 0;
    const seconds = wrkDuration(total[2] as string, total[3] as string) / 1000;
    return {
      tool: tools.wrk,
      requests: Number(total[1]) - non2xx,
      seconds,
      rps: Number(rps[1]),
      p50Ms: wrkDuration(p50[1] as string, p50[2] as string),
      p99Ms: wrkDuration(p99[1] as string, p99[2] as string),
      errors: non2xx + socketErrors,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function autocannonLoad(
  target: LoadTarget,
  body: string,
  shape: { connections: number; seconds: number; warmupSeconds: number },
): Promise<LoadResult> {
  const options = {
    url: `${target.url}${target.path}`,
    method: "POST" as const,
    body,
    headers: target.headers,
    connections: shape.connections,
  };
  if (shape.warmupSeconds > 0) await autocannon({ ...options, duration: shape.warmupSeconds });
  const result = await autocannon({ ...options, duration: shape.seconds });
  return {
    tool: "autocannon (wrk not found: apt-get install wrk)",
    requests: result.requests.total - result.non2xx,
    seconds: result.duration,
    rps: (result.requests.total - result.non2xx) / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}
