// npm run conformance [-- --target=mesh|control|both] [--suite=name] [--filter=substring]
//   [--concurrency=n] [--verbose]
// Runs the official Connect conformance server suites against the mesh runtime and/or the bare
// connect-node control, prints one line per suite and a total, and exits 1 on any failure that
// conformance/known-failures.yaml does not list.
import path from "node:path";
import { parseArgs } from "node:util";
import { startControlServer } from "./src/control-server.ts";
import {
  loadKnownFailures,
  type Outcome,
  report,
  runAgainst,
  type TargetKind,
} from "./src/runner/runner.ts";
import { expandAll, loadSuites } from "./src/runner/suites.ts";
import { startServerUnderTest } from "./src/server-under-test.ts";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "both" },
    suite: { type: "string", multiple: true },
    filter: { type: "string" },
    concurrency: { type: "string", default: "8" },
    verbose: { type: "boolean", default: false },
  },
});

const kinds: Record<string, TargetKind> = {
  mesh: { key: "mesh", start: startServerUnderTest },
  control: { key: "control", start: startControlServer },
};
const selected =
  values.target === "both" ? ["control", "mesh"] : (values.target ?? "").split(",").filter(Boolean);
for (const key of selected) {
  if (kinds[key] === undefined) {
    console.error(`unknown target ${key}: mesh, control or both`);
    process.exit(2);
  }
}

const loaded = loadSuites();
const wanted = (values.suite ?? []).map((s) => s.toLowerCase());
const matchesSuite = (name: string, file: string) =>
  wanted.length === 0 ||
  wanted.some((w) => name.toLowerCase() === w || path.basename(file, ".yaml") === w);
const chosen = loaded.filter((s) => matchesSuite(s.name, s.file));
if (chosen.length === 0) {
  console.error(`no suite matches ${wanted.join(", ")}`);
  process.exit(2);
}
const { permutations: all, clientSuites } = expandAll(chosen);
const permutations =
  values.filter === undefined ? all : all.filter((p) => p.name.includes(values.filter ?? ""));
const knownFailures = loadKnownFailures(path.join(import.meta.dirname, "known-failures.yaml"));

console.log(
  `${chosen.length - clientSuites.length} server suites, ${permutations.length} permutations; ` +
    `${clientSuites.length} client-mode suites skipped (${clientSuites.reduce((n, s) => n + s.caseCount, 0)} cases: they test clients)`,
);

let failed = 0;
for (const key of selected) {
  const kind = kinds[key];
  if (kind === undefined) continue;
  const started = Date.now();
  const outcomes = await runAgainst({
    kind,
    permutations,
    knownFailures,
    concurrency: Number(values.concurrency),
    onOutcome(o: Outcome) {
      if (values.verbose && o.status !== "passed") {
        console.log(
          `${o.status.toUpperCase()} [${key}] ${o.perm.name}${o.note ? ` (${o.note})` : ""}`,
        );
        for (const e of o.errors) console.log(`    ${e}`);
      }
    },
  });
  const { lines, total } = report(
    `${key}: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    outcomes,
  );
  if (!values.verbose) {
    const failures = outcomes.filter((o) => o.status === "failed");
    for (const o of failures.slice(0, 30)) {
      console.log(`FAILED [${key}] ${o.perm.name}`);
      for (const e of o.errors.slice(0, 5)) console.log(`    ${e}`);
    }
    if (failures.length > 30) console.log(`... and ${failures.length - 30} more (--verbose)`);
  }
  for (const line of lines) console.log(line);
  failed += total.failed;
}
process.exit(failed > 0 ? 1 : 0);
