// The database's own ceiling for one service's writes: the transaction the service commits for
// one write (bench/lib/write-transactions.ts) from `connections` connections at once, each in a
// closed loop, with no service in between. Started by bench/scenarios/write-ceiling.ts with an IPC
// channel: it says when it is ready and starts when told (so that processes started together,
// one per service, measure the same window), says when its measured window opens and closes (the
// driver reads the change log, the lock and the CPU counters then), and ends with the closed-loop
// result.
import { once } from "node:events";
import postgres from "postgres";
import { type ClosedLoopResult, closedLoop } from "./closed-loop.ts";
import { type AppendVariant, directWrite, type WriteService } from "./write-transactions.ts";

/** What the driver passes as the one argument, in JSON. */
export interface DirectWriteOptions {
  databaseUrl: string;
  service: WriteService;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  emailPrefix: string;
  skus: string[];
  append: AppendVariant;
}

/** What this process sends the driver; the driver answers "ready" with any message to start. */
export type DirectWriteMessage =
  | { type: "ready" }
  | { type: "window"; edge: "open" | "close" }
  | ({ type: "result" } & ClosedLoopResult);

const options = JSON.parse(process.argv[2] ?? "{}") as DirectWriteOptions;
const channel = process.send?.bind(process);
if (channel === undefined) throw new Error("direct-write.ts is started with an IPC channel");
const send = (message: DirectWriteMessage) =>
  new Promise<void>((resolve, reject) =>
    channel(message, undefined, undefined, (error) => (error ? reject(error) : resolve())),
  );
const sql = postgres(options.databaseUrl, {
  max: options.connections,
  onnotice: () => {},
  connection: { application_name: `bench-direct-${options.service}` },
  types: { bigint: postgres.BigInt },
});
const started = once(process, "message");
await send({ type: "ready" });
await started;
const result = await closedLoop({
  concurrency: options.connections,
  seconds: options.seconds,
  warmupSeconds: options.warmupSeconds,
  call: directWrite(sql, options.service, options),
  onWindow: (edge) => send({ type: "window", edge }),
});
await sql.end();
await send({ type: "result", ...result });
process.disconnect();
