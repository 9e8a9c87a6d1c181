// Reads a V8 sampling heap profile (.heapprofile, as bench/profile.ts --allocations takes it, with
// the objects the collector has already freed) and says where the bytes a call allocates come
// from: bytes per call by allocating function (with the call paths behind it) and by package.
// Allocation, not what is held: under load, what the collector has to sweep.
import { readFileSync } from "node:fs";
import { frameLabel, SelfTally } from "./cpu-profile.ts";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}
/** The part of a V8 sampling heap profile this reads. */
export interface HeapProfile {
  head: HeapNode;
}

/** The allocations of `profile` per call of `calls`, the `top` functions first. */
export function summariseAllocations(profile: HeapProfile, calls: number, top: number) {
  const tally = new SelfTally();
  let total = 0;
  // Depth first, with the names of the frames above each node (the nearest three are its callers).
  const walk = (node: HeapNode, above: string[]) => {
    if (node.selfSize > 0) {
      total += node.selfSize;
      tally.add(node.callFrame, node.selfSize, above.slice(-3).reverse().join(" ← "));
    }
    const name = frameLabel(node.callFrame);
    const next = name.startsWith("(root)") ? above : [...above, name];
    for (const child of node.children) walk(child, next);
  };
  walk(profile.head, []);
  const perCall = (bytes: number) => Math.round(bytes / calls);
  return {
    calls,
    bytesPerCall: perCall(total),
    functions: tally.top(top).map(({ callers, amount, ...f }) => ({
      ...f,
      bytesPerCall: perCall(amount),
      calledFrom: callers.map(([path, bytes]) => ({ path, bytesPerCall: perCall(bytes) })),
    })),
    packages: tally
      .packagesByAmount()
      .map(([pkg, bytes]) => ({ package: pkg, bytesPerCall: perCall(bytes) })),
  };
}

/** The summary of an allocation profile as `summariseAllocations` returns it. */
export type AllocationSummary = ReturnType<typeof summariseAllocations>;

/** Reads and summarises the .heapprofile at `file`. */
export function summariseAllocationsFile(
  file: string,
  calls: number,
  top: number,
): AllocationSummary {
  return summariseAllocations(JSON.parse(readFileSync(file, "utf8")) as HeapProfile, calls, top);
}

/** The summary as Markdown: the top functions, their callers, and the packages. */
export function formatAllocations(summary: AllocationSummary, callerRows = 12): string {
  const lines = [
    `${summary.bytesPerCall} bytes allocated a call, over ${summary.calls} calls (sampled, freed objects included)`,
    "",
    "| bytes a call | function | where |",
    "| ---: | --- | --- |",
    ...summary.functions.map((f) => `| ${f.bytesPerCall} | \`${f.name}\` | ${f.where || f.pkg} |`),
    "",
    `Called from (the three nearest callers, for the top ${callerRows}):`,
  ];
  for (const f of summary.functions.slice(0, callerRows)) {
    lines.push(`- \`${f.name}\` ${f.bytesPerCall} B`);
    for (const caller of f.calledFrom) lines.push(`    ${caller.bytesPerCall} B  ← ${caller.path}`);
  }
  lines.push("", "| bytes a call | package |", "| ---: | --- |");
  for (const p of summary.packages.slice(0, 20)) lines.push(`| ${p.bytesPerCall} | ${p.package} |`);
  return lines.join("\n");
}
