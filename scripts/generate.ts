// `npm run generate` (before `npm test`; `npm start` calls generateIfChanged itself): runs
// `buf generate` only when the contracts (proto/, buf.yaml, buf.gen.yaml) differ from those the
// generated code in packages/api/src/gen was made from, so that a start on unchanged contracts does
// not pay for it. `--force` always runs it.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { filesDigest, filesUnder } from "./files-digest.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "packages", "api", "src", "gen");
const stamp = path.join(out, ".contracts-sha256");

/**
 * Runs `buf generate` when the contracts differ from those the generated code was made from, or
 * always with `force`; true when it ran.
 */
export function generateIfChanged(options: { force?: boolean } = {}): boolean {
  const digest = filesDigest(root, [
    "buf.yaml",
    "buf.gen.yaml",
    ...filesUnder(root, "proto").filter((file) => file.endsWith(".proto")),
  ]);
  const current = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : undefined;
  if (current === digest && !options.force) return false;
  execFileSync(path.join(root, "node_modules", ".bin", "buf"), ["generate"], {
    cwd: root,
    stdio: "inherit",
  });
  writeFileSync(stamp, `${digest}\n`);
  return true;
}

if (import.meta.main) generateIfChanged({ force: process.argv.includes("--force") });
