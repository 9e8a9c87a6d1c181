// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time per function
// (with the call paths behind it) and per package.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { root } from "./processes.ts";

/** `file:///…/` of the repository, cut from the locations in summaries. */
const rootUrl = pathToFileURL(root).href.replace(/\/?$/, "/");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
/** The parts of a V8 CPU profile this reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * Self cost (CPU time, bytes) per function, with the call paths behind it, and per package: what
 * the CPU and allocation summaries count, whatever their unit.
 */
export class SelfTally {
  private readonly functions = new Map<
    string,
    { name: string; where: string; pkg: string; amount: number; callers: Map<string, number> }
  >();
  private readonly packages = new Map<string, number>();

  add(
    frame: { functionName: string; url: string; lineNumber: number },
    amount: number,
    callers: string,
  ): void {
    const { functionName, url, lineNumber } = frame;
    const where = url === "" ? "" : `${url.replace(rootUrl, "")}:${lineNumber + 1}`;
    const key = `${functionName}@${where}`;
    const pkg = packageOf(url);
    const entry = this.functions.get(key) ?? {
      name: functionName || "(anonymous)",
      where,
      pkg,
      amount: 0,
      callers: new Map<string, number>(),
    };
    entry.amount += amount;
    entry.callers.set(callers, (entry.callers.get(callers) ?? 0) + amount);
    this.functions.set(key, entry);
    this.packages.set(pkg, (this.packages.get(pkg) ?? 0) + amount);
  }

  /** The `count` costliest functions, each with its three costliest call paths. */
  top(count: number) {
    return [...this.functions.values()]
      .sort((a, b) => b.amount - a.amount)
      .slice(0, count)
      .map(({ callers, ...f }) => ({
        ...f,
        callers: [...callers].sort((a, b) => b[1] - a[1]).slice(0, 3),
      }));
  }

  packagesByAmount(): [string, number][] {
    return [...this.packages].sort((a, b) => b[1] - a[1]);
  }
}

/** A frame as the summaries' call paths name it: the function, and its file and line. */
export function frameLabel(frame: { functionName: string; url: string; lineNumber: number }) {
  const file = frame.url.split("/").at(-1) ?? "";
  return `${frame.functionName || "(anonymous)"}${file ? ` (${file}:${frame.lineNumber + 1})` : ""}`;
}

/** Which package (or part of Node, or of this repository) a script URL belongs to. */
function packageOf(url: string): string {
  if (url === "") return "(native / V8)";
  if (url.startsWith("node:internal/")) {
    return `node:internal/${url.slice("node:internal/".length).split("/")[0]}`;
  }
  if (url.startsWith("node:")) return url;
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const local = url.replace(/^file:\/\//, "");
  const relative = path.relative(root, local);
  return relative.startsWith("..") ? local : relative.split("/").slice(0, 2).join("/");
}

/** Self time per function and package, counting only samples from `skipMs` after the start. */
export function summarise(profile: CpuProfile, top: number, skipMs: number) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parentOf.set(child, node.id);
  }
  const frameName = (id: number | undefined) => {
    const frame = id === undefined ? undefined : byId.get(id)?.callFrame;
    return frame ? frameLabel(frame) : "";
  };
  /** The three frames that called node `id`, nearest first. */
  const callersOf = (id: number) => {
    const names: string[] = [];
    let current = parentOf.get(id);
    while (current !== undefined && names.length < 3) {
      const name = frameName(current);
      if (name !== "" && !name.startsWith("(root)")) names.push(name);
      current = parentOf.get(current);
    }
    return names.join(" ← ");
  };
  const self = new Map<number, number>();
  let elapsed = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    elapsed += delta;
    if (elapsed < skipMs * 1000) continue;
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + delta);
  }
  const total = [...self.values()].reduce((sum, us) => sum + us, 0);
  const idle = [...self]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)")
    .reduce((sum, [, us]) => sum + us, 0);
  const busy = total - idle;
  const tally = new SelfTally();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === "(idle)") continue;
    tally.add(node.callFrame, us, callersOf(id));
  }
  const share = (us: number) => Math.round((us / busy) * 1000) / 10;
  return {
    profiledSeconds: total / 1e6,
    busySeconds: busy / 1e6,
    functions: tally.top(top).map(({ callers, amount, ...f }) => ({
      ...f,
      us: amount,
      ms: Math.round(amount / 1000),
      percent: share(amount),
      // The call paths that account for most of this function's self time.
      calledFrom: callers.map(([path, us]) => ({ path, percent: share(us) })),
    })),
    packages: tally
      .packagesByAmount()
      .map(([pkg, us]) => ({ package: pkg, ms: Math.round(us / 1000), percent: share(us) })),
  };
}

/** The summary of a profile as `summarise` returns it. */
export type ProfileSummary = ReturnType<typeof summarise>;

/** Reads and summarises the .cpuprofile at `file`, skipping its first `skipMs`. */
export function summariseFile(file: string, top: number, skipMs: number): ProfileSummary {
  return summarise(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, top, skipMs);
}

/** The summary as Markdown: the top functions, their callers, and the packages. */
export function formatSummary(summary: ProfileSummary, callerRows = 12): string {
  const lines = [
    `busy ${summary.busySeconds.toFixed(2)} s of the ${summary.profiledSeconds.toFixed(2)} s measured (the rest idle); percentages are of the busy time`,
    "",
    "| self % | self ms | function | where |",
    "| ---: | ---: | --- | --- |",
    ...summary.functions.map(
      (f) => `| ${f.percent} | ${f.ms} | \`${f.name}\` | ${f.where || f.pkg} |`,
    ),
    "",
    `Called from (the three nearest callers, for the top ${callerRows}):`,
  ];
  for (const f of summary.functions.slice(0, callerRows)) {
    lines.push(`- \`${f.name}\` ${f.percent}%`);
    for (const caller of f.calledFrom) lines.push(`    ${caller.percent}%  ← ${caller.path}`);
  }
  lines.push("", "| self % | package |", "| ---: | --- |");
  for (const p of summary.packages.slice(0, 20)) lines.push(`| ${p.percent} | ${p.package} |`);
  return lines.join("\n");
}
