// Where the time of our unary path goes: runs our users server (in-memory store, so only the
// serving path is measured) under `node --cpu-prof`, loads it with h2load like the unary scenario,
// and prints the functions with the most self time, and the self time per package.
//
//   node bench/profile.ts [--protocol=grpc|connect-binary|connect-json] [--seconds=10]
//   node bench/profile.ts --server=grpc-js.ts   (the same for a peer, for comparison)
//   node bench/profile.ts --analyze=<file.cpuprofile> [--skip=<ms>]   (summarise any profile)
//   node bench/profile.ts --protocol=connect-json --after=grpc,grpc-web,connect-binary
//       (loads the server with those protocols first, 4 s each, as `npm run bench` does before its
//       Connect JSON rounds: a process that has served them all runs its JSON path slower)
//   node bench/profile.ts --allocations [--protocol=…] [--server=…]
//       (instead of CPU time, the bytes a call allocates, by function and package, from V8's
//       sampling heap profiler over the measured load: what the garbage collector has to sweep;
//       writes bench/results/allocations-<server>-<protocol>.json and .heapprofile)
//
// Writes bench/results/profile-<server>-<protocol>.json (the summary) and keeps the raw
// .cpuprofile next to it for Chrome DevTools or speedscope.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { formatSummary, summariseFile } from "./lib/cpu-profile.ts";
import { fixtureUser } from "./lib/fixture.ts";
import { formatAllocations, summariseAllocationsFile } from "./lib/heap-profile.ts";
import { findTools, h1Load, h2Load, type LoadResult } from "./lib/load.ts";
import { pinSelf, root, startServer } from "./lib/processes.ts";
import { getUserTarget, type UnaryProtocol } from "./scenarios/unary.ts";

const { values } = parseArgs({
  options: {
    protocol: { type: "string", default: "grpc" },
    seconds: { type: "string", default: "10" },
    server: { type: "string", default: "ours.ts" },
    top: { type: "string", default: "30" },
    analyze: { type: "string" },
    skip: { type: "string", default: "0" },
    after: { type: "string", default: "" },
    allocations: { type: "boolean", default: false },
  },
});
const protocol = values.protocol as UnaryProtocol;
const seconds = Number(values.seconds);
const script = values.server ?? "ours.ts";
const warmupSeconds = 2;
const top = Number(values.top);

if (values.analyze) {
  // Only summarise a profile taken elsewhere (npm run bench -- --cpu-prof, say).
  console.log(formatSummary(summariseFile(values.analyze, top, Number(values.skip))));
  process.exit(0);
}

const pinning = pinSelf();
const tools = findTools();
const resultsDir = path.join(root, "bench", "results");
const profileDir = path.join(resultsDir, `.cpuprofile-${process.pid}`);
if (!values.allocations) mkdirSync(profileDir, { recursive: true });
const spawnedAt = performance.now();
const server = await startServer({
  name: script,
  script,
  args: ["--store=memory"],
  pinning,
  nodeFlags: values.allocations ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`],
});
const load = (protocol: UnaryProtocol, seconds: number, warmupSeconds: number) => {
  const target = getUserTarget(protocol, server.url, fixtureUser.id);
  return protocol === "connect-json"
    ? h1Load(tools, target, { connections: 64, seconds, warmupSeconds })
    : h2Load(tools, target, { clients: 8, streams: 16, seconds, warmupSeconds });
};
for (const before of values.after.split(",").filter((name) => name !== "")) {
  const done = await load(before as UnaryProtocol, 4, 0);
  console.log(`# first ${before}: ${Math.round(done.rps)} req/s`);
}
/** The load's figures, as printed. */
const describe = (result: LoadResult) =>
  `# ${Math.round(result.rps)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, errors ${result.errors}`;
/** Writes bench/results/<base>.json: the load and the summary of its profile. */
const writeSummary = (base: string, result: LoadResult, summary: object) =>
  writeFileSync(
    path.join(resultsDir, `${base}.json`),
    `${JSON.stringify({ generatedAt: new Date().toISOString(), server: script, protocol, load: result, ...summary }, null, 2)}\n`,
  );
const serverName = script.replace(/\.ts$/, "");
if (values.allocations) {
  // The warm-up outside the sample, so that it holds the measured calls alone.
  await load(protocol, warmupSeconds, 0);
  console.log(
    `# ${script} (${protocol}) under load for ${seconds} s, allocations sampled; ${pinning.note}`,
  );
  await server.sampleAllocations();
  const result = await load(protocol, seconds, 0);
  const base = `allocations-${serverName}-${protocol}`;
  const kept = path.join(resultsDir, `${base}.heapprofile`);
  await server.sampleAllocations(kept);
  await server.stop();
  console.log(describe(result));
  const summary = summariseAllocationsFile(kept, result.requests, top);
  writeSummary(base, result, summary);
  console.log(`\n${formatAllocations(summary)}`);
  console.log(`\nwrote bench/results/${base}.json and ${base}.heapprofile`);
  process.exit(0);
}
const measuredFrom = performance.now() - spawnedAt;
console.log(`# ${script} (${protocol}) under load for ${seconds} s; ${pinning.note}`);
const result = await load(protocol, seconds, warmupSeconds);
console.log(describe(result));
await server.stop();

const file = readdirSync(profileDir).find((name) => name.endsWith(".cpuprofile"));
if (!file) throw new Error(`no .cpuprofile in ${profileDir}`);
const base = `profile-${serverName}-${protocol}`;
const kept = path.join(resultsDir, `${base}.cpuprofile`);
renameSync(path.join(profileDir, file), kept);
rmSync(profileDir, { recursive: true, force: true });
// Start-up (module loading), the other protocols and the warm-up are left out: only the measured
// window counts.
const summary = summariseFile(kept, top, measuredFrom + warmupSeconds * 1000);
writeSummary(base, result, summary);
console.log(`\n${formatSummary(summary)}`);
console.log(`\nwrote bench/results/${base}.json and ${base}.cpuprofile`);
