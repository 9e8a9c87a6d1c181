import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 held open until `release()`: for a port chosen long before a process
 * binds it (one named in another server's configuration), which a port number alone would leave
 * free for any other listener meanwhile (tests run side by side).
 */
export function reservePort(): Promise<{ port: number; release(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({
        port: typeof address === "object" && address ? address.port : 0,
        release: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

/** Waits until the server on `port` reports SERVING over grpc.health.v1, for at most `timeoutMs`. */
export async function waitUntilServing(port: number, timeoutMs = 30_000): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { status } = await health.check({}, { timeoutMs: 1_000 });
      if (status === HealthCheckResponse_ServingStatus.SERVING) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`port ${port} did not become SERVING`);
    await sleep(50);
  }
}

/** A service running as its own process, as `npm start` runs it. */
export interface ServiceProcess {
  port: number;
  url: string;
  /** Kills the process with `signal` (SIGKILL: no chance to clean up) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and waits until it serves. */
  restart(): Promise<void>;
}

/**
 * Starts `services/<name>/src/main.ts` (or `options.entry`, its bundle say) in a child process on a
 * free port with `env` added, and waits until it serves. Its logs go to this process's stderr when
 * LOG_LEVEL is set. Authentication is off unless `env` turns it on.
 */
export async function startServiceProcess(
  name: "users" | "inventory" | "orders",
  env: Record<string, string>,
  options: { entry?: string } = {},
): Promise<ServiceProcess> {
  const entry = options.entry ?? path.join(root, "services", name, "src", "main.ts");
  const port = env.PORT ? Number(env.PORT) : await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(process.execPath, [entry], {
      cwd: root,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.LOG_LEVEL ?? "silent",
        AUTH: "off",
        ...env,
        PORT: String(port),
        HOST: "127.0.0.1",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    await waitUntilServing(port);
  };
  await launch();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async kill(signal = "SIGTERM") {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        running.once("exit", () => resolve());
        running.kill(signal);
      });
    },
    restart: launch,
  };
}
