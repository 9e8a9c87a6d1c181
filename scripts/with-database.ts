// Runs a command with DATABASE_URL pointing at a PostgreSQL server: the one DATABASE_URL already
// names, or else a throwaway instance of the embedded server (a data folder of its own and a free
// port, so that it never touches the data of `npm start` or another test run), removed when the
// command ends.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalPostgres } from "@shop/local-postgres";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node scripts/with-database.ts <command> [args...]");
  process.exit(2);
}

let stop = async () => {};
let url = process.env.DATABASE_URL;
if (!url) {
  const started = Date.now();
  const dataDir = path.join(root, ".data", `test-postgres-${process.pid}`);
  const local = await startLocalPostgres({ dataDir, port: 0 });
  url = local.url;
  stop = async () => {
    await local.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  console.error(`# embedded PostgreSQL for tests ready in ${Date.now() - started} ms (${url})`);
}

const child = spawn(command, args, {
  stdio: "inherit",
  env: { ...process.env, DATABASE_URL: url },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on("SIGINT", forward);
process.on("SIGTERM", forward);
child.on("exit", async (code, signal) => {
  await stop();
  process.exit(code ?? (signal ? 1 : 0));
});
