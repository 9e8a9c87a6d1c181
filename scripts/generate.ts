// `npm run generate` before `npm start` and `npm test`: runs `buf generate` only when the contracts
// (proto/, buf.yaml, buf.gen.yaml) differ from those the generated code in packages/api/src/gen was
// made from, so that a start on unchanged contracts does not pay for it. `--force` always runs it.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "packages", "api", "src", "gen");
const stamp = path.join(out, ".contracts-sha256");

/** Every file the generated code depends on, in a fixed order. */
function inputs(): string[] {
  const protos = readdirSync(path.join(root, "proto"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".proto"))
    .map((file) => path.join("proto", file))
    .sort();
  return ["buf.yaml", "buf.gen.yaml", ...protos];
}

const hash = createHash("sha256");
for (const file of inputs()) {
  hash
    .update(file)
    .update("\0")
    .update(readFileSync(path.join(root, file)))
    .update("\0");
}
const digest = hash.digest("hex");
const current = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : undefined;
if (current === digest && !process.argv.includes("--force")) process.exit(0);

execFileSync(path.join(root, "node_modules", ".bin", "buf"), ["generate"], {
  cwd: root,
  stdio: "inherit",
});
writeFileSync(stamp, `${digest}\n`);
