// What decides whether generated files are stale: a digest of the files they are made from
// (scripts/generate.ts for the API code, scripts/build-services.ts for the service bundles).
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

/** The files below `folder` (relative to `root`), as paths relative to `root`; none if absent. */
export function filesUnder(root: string, folder: string): string[] {
  const full = path.join(root, folder);
  if (!existsSync(full)) return [];
  return readdirSync(full, { recursive: true, encoding: "utf8" })
    .map((file) => path.join(folder, file))
    .filter((file) => statSync(path.join(root, file)).isFile());
}

/** A SHA-256 of the names and contents of `files` (relative to `root`), in sorted order. */
export function filesDigest(root: string, files: readonly string[]): string {
  const hash = createHash("sha256");
  for (const file of [...files].sort()) {
    hash
      .update(file)
      .update("\0")
      .update(readFileSync(path.join(root, file)))
      .update("\0");
  }
  return hash.digest("hex");
}
