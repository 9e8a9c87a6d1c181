// The shop's services as `npm start` runs them: the bundle of services/<name>/src/main.ts
// (scripts/build-services.ts) in a process of its own, configured by environment, pinned to the
// server cores, timed from spawn to SERVING.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";
import { freePort } from "@shop/testing";
import { bundleOf } from "../../scripts/build-services.ts";
import { childEnv, type Pinning, pinnedCommand, root, stopChild } from "./processes.ts";

/** A service process of the shop. */
export interface ServiceProcess {
  name: string;
  pid: number;
  port: number;
  url: string;
  /** Milliseconds from spawn until grpc.health.v1 answered SERVING. */
  startMs: number;
  /** SIGTERM (graceful shutdown) and wait for the exit. */
  stop(): Promise<void>;
}

/** Polls grpc.health.v1.Health/Check every 5 ms until SERVING, for at most `timeoutMs`. */
async function untilServing(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before SERVING`);
    try {
      const { status } = await health.check({}, { timeoutMs: 1_000 });
      if (status === HealthCheckResponse_ServingStatus.SERVING) return;
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline) throw new Error(`not SERVING after ${timeoutMs} ms`);
    await sleep(5);
  }
}

/**
 * Starts the bundle of services/<name>/src/main.ts with `env` (and `nodeFlags` for node) on a
 * free port and waits until it is SERVING. The bundles must have been built (buildServices).
 */
export async function startService(
  name: "users" | "inventory" | "orders",
  env: Record<string, string>,
  pinning: Pinning,
  nodeFlags: readonly string[] = [],
): Promise<ServiceProcess> {
  const port = await freePort();
  const started = performance.now();
  const [command, args] = pinnedCommand(pinning, pinning.serverCpus, process.execPath, [
    ...nodeFlags,
    bundleOf(name),
  ]);
  const child = spawn(command, args, {
    cwd: root,
    // With the compile cache npm start gives its services.
    env: childEnv({
      NODE_COMPILE_CACHE: path.join(root, ".data", "compile-cache"),
      ...env,
      PORT: String(port),
      HOST: "127.0.0.1",
    }),
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await untilServing(port, child, 60_000);
  } catch (error) {
    await stopChild(child);
    throw new Error(`${name} did not start`, { cause: error });
  }
  return {
    name,
    pid: child.pid ?? 0,
    port,
    url: `http://127.0.0.1:${port}`,
    startMs: performance.now() - started,
    stop: () => stopChild(child),
  };
}
