// `npm run build:services` (and `npm start`, when a service's sources changed since its last build):
// bundles each service's src/main.ts with esbuild into services/<name>/dist/main.js, one file with
// every dependency it loads on a default start.
//
// Why: Node resolves every module of a package against that package's package.json; drizzle-orm's
// has ~450 export entries, and loading its few hundred modules one by one cost a service ~2 s and
// ~150 MiB of heap at start-up on Node 24. A bundle is read and compiled once. The TypeScript
// sources stay the truth: `npm run dev` and the tests run them directly, and a stale bundle is
// rebuilt before `npm start` uses it.
//
// Left out of the bundle, loaded from node_modules only when used: the embedded PostgreSQL (only
// without DATABASE_URL; it finds its binaries and data folder relative to its own files, see
// packages/local-postgres/src/resolve.ts), the OpenTelemetry SDK (only when tracing is on) and the
// contracts with their comments (only when reflection is first asked).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { filesDigest, filesUnder } from "./files-digest.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const serviceNames = ["users", "inventory", "orders"] as const;

/** Where the bundle of `name` is written. */
export function bundleOf(name: (typeof serviceNames)[number]): string {
  return path.join(root, "services", name, "dist", "main.js");
}

/**
 * Node's built-in modules through require() instead of import: an import of a built-in makes an
 * ES module facade that reads every export, and reading node:http's loads undici (~40 ms, every
 * start) for fetch-related getters the services never use. Written by hand: esbuild keeps
 * built-ins as imports in an ES module bundle and has no option to change that.
 */
const builtinsByRequire: Plugin = {
  name: "builtins-by-require",
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) =>
      // The require() written below is the real one.
      args.namespace === "builtin"
        ? { path: args.path, external: true }
        : { path: args.path, namespace: "builtin" },
    );
    build.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

/** A digest of every source a service bundle is made from, of the lock file and of this script. */
function sourcesDigest(): string {
  const folders = [
    "packages/api/src",
    "packages/auth/src",
    "packages/mesh/src",
    "packages/local-postgres/src",
    ...serviceNames.map((name) => `services/${name}/src`),
  ];
  return filesDigest(root, [
    "package-lock.json",
    "scripts/build-services.ts",
    ...folders.flatMap((folder) => filesUnder(root, folder)),
  ]);
}

/** Builds the bundles unless they were built from these very sources; returns whether it built. */
export async function buildServices(options: { force?: boolean } = {}): Promise<boolean> {
  const digest = sourcesDigest();
  const stamp = path.join(root, "services", ".dist-sha256");
  const fresh =
    existsSync(stamp) &&
    readFileSync(stamp, "utf8").trim() === digest &&
    serviceNames.every((name) => existsSync(bundleOf(name)));
  if (fresh && !options.force) return false;
  await Promise.all(
    serviceNames.map((name) =>
      build({
        entryPoints: [path.join(root, "services", name, "src", "main.ts")],
        outfile: bundleOf(name),
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node24",
        sourcemap: "linked",
        minifyWhitespace: true,
        minifySyntax: true,
        // The contracts with their comments (half a megabyte) are read by reflection only. The
        // OpenTelemetry API stays outside with the SDK: a copy of it in the bundle would hand the
        // runtime a tracer from its own provider, which the SDK (registering with the copy in
        // node_modules) never reaches, and no span would record.
        external: ["@opentelemetry/api", "@opentelemetry/sdk-node", "@shop/api/descriptors"],
        plugins: [builtinsByRequire],
        // CommonJS dependencies inside an ES module bundle still call require().
        banner: {
          js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
        },
        logLevel: "warning",
        // The embedded PostgreSQL is imported by a name esbuild cannot follow, on purpose.
        logOverride: { "unsupported-dynamic-import": "silent" },
      }),
    ),
  );
  writeFileSync(stamp, `${digest}\n`);
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const built = await buildServices({ force: process.argv.includes("--force") });
  console.log(
    built
      ? `service bundles built in ${Math.round(performance.now() - started)} ms`
      : "service bundles are up to date",
  );
}
