// A fast, representative part of the official conformance suites, against the connect-node control
// and the mesh runtime: Basic and Errors (proto, identity; every protocol, HTTP version and TLS),
// and the raw-request suites of each protocol. `npm run conformance` runs them all.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { Codec, Compression } from "@shop/api/connectrpc/conformance/v1/config_pb";
import { startControlServer } from "../src/control-server.ts";
import { loadKnownFailures, runAgainst, type TargetKind } from "../src/runner/runner.ts";
import { expandAll, loadSuites } from "../src/runner/suites.ts";
import { startServerUnderTest } from "../src/server-under-test.ts";

const files = new Set([
  "basic.yaml",
  "errors.yaml",
  "server_unexpected.yaml",
  "connect_server_unexpected.yaml",
  "grpc_server_unexpected.yaml",
  "grpc_web_server_unexpected.yaml",
]);
const { permutations } = expandAll(loadSuites().filter((s) => files.has(s.file)));
// Every codec and compression is in the full run; here one of each keeps the part fast.
const subset = permutations.filter(
  (p) => p.request.codec === Codec.PROTO && p.request.compression === Compression.IDENTITY,
);
const knownFailures = loadKnownFailures(path.join(import.meta.dirname, "../known-failures.yaml"));

const kinds: TargetKind[] = [
  { key: "control", start: startControlServer },
  { key: "mesh", start: startServerUnderTest },
];

describe("conformance (representative part)", () => {
  for (const kind of kinds) {
    test(`${kind.key}: no failure beyond the known ones`, async () => {
      const outcomes = await runAgainst({
        kind,
        permutations: subset,
        knownFailures,
        concurrency: 8,
      });
      const failed = outcomes.filter((o) => o.status === "failed");
      assert.deepEqual(
        failed.map((o) => `${o.perm.name}: ${o.errors.join("; ")}`),
        [],
      );
      assert.equal(outcomes.filter((o) => o.status === "skipped").length, 0);
      assert.ok(outcomes.length > 500);
    });
  }
});
