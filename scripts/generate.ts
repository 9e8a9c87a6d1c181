// `npm run generate` (before `npm test`; `npm start` calls generateIfChanged itself): runs
// `buf generate`, and writes the contracts as one FileDescriptorSet with their comments (source
// info) to packages/api/src/gen/descriptors.js, which server reflection serves so that the
// dashboard's explorer can show each field's comment; only when the contracts (proto/, buf.yaml, buf.gen.yaml) differ from those the
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
  const buf = path.join(root, "node_modules", ".bin", "buf");
  execFileSync(buf, ["generate"], { cwd: root, stdio: "inherit" });
  const set = execFileSync(buf, ["build", "--as-file-descriptor-set", "-o", "-#format=binpb"], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  writeFileSync(
    path.join(out, "descriptors.js"),
    `// The contracts as a FileDescriptorSet with source info (comments), base64. Written by scripts/generate.ts.\nexport const fileDescriptorSetBase64 = "${set.toString("base64")}";\n`,
  );
  writeFileSync(
    path.join(out, "descriptors.d.ts"),
    "/** The contracts as a FileDescriptorSet with source info (comments), base64. */\nexport declare const fileDescriptorSetBase64: string;\n",
  );
  writeFileSync(stamp, `${digest}\n`);
  return true;
}

if (import.meta.main) generateIfChanged({ force: process.argv.includes("--force") });
