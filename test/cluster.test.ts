// The scaled-out shop on real parts (scripts/cluster.ts): a PostgreSQL server of its own (Debian's),
// two replicas of each service on it and Caddy (Debian's, with deploy/base/Caddyfile) in front of
// each. Orders are placed through the edges at concurrency 16 with request ids while one replica of
// each service in turn is killed with SIGKILL and restarted: no acknowledged order is lost or
// doubled and the stock adds up; the errors clients saw during each kill, and for how long, are
// reported. A replica told to stop (SIGTERM) leaves the edge before it stops answering.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import postgres, { type Sql } from "postgres";
import {
  type Cluster,
  debianPostgres,
  type ServiceName,
  startCluster,
} from "../scripts/cluster.ts";
import { assertInvariants, placeOrdersUnderFire } from "./support/orders-under-fire.ts";

const missing = [
  debianPostgres() ? undefined : "PostgreSQL's server (apt-get install postgresql)",
  (await import("node:child_process")).spawnSync("caddy", ["version"]).status === 0
    ? undefined
    : "Caddy (apt-get install caddy)",
].filter(Boolean);
const skip = missing.length > 0 ? `not installed here: ${missing.join(", ")}` : false;

let cluster: Cluster;
let sql: Sql;
before(async () => {
  if (skip) return;
  cluster = await startCluster({
    // Half-done orders are rolled back soon after a crash, so the test can wait for it.
    env: { PENDING_TIMEOUT_MS: "1000", SWEEP_INTERVAL_MS: "200", UPSTREAM_TIMEOUT_MS: "1000" },
  });
  sql = postgres(cluster.databaseUrl, { max: 2, onnotice: () => {} });
});
after(async () => {
  await sql?.end();
  await cluster?.stop();
});

test("orders through the edges while a replica of each service is killed: nothing lost, nothing doubled", {
  skip,
}, async (t) => {
  /** What the clients saw while each replica was down: failed attempts and their span. */
  const windows: { victim: string; from: number; to: number }[] = [];
  let started = 0;
  const run = await placeOrdersUnderFire(
    {
      usersUrl: cluster.edges.users,
      inventoryUrl: cluster.edges.inventory,
      ordersUrl: cluster.edges.orders,
      sql,
    },
    {
      count: 600,
      concurrency: 16,
      async fire() {
        started = performance.now();
        for (const name of ["users", "inventory", "orders"] as ServiceName[]) {
          await sleep(700);
          const victim = cluster.replicas[name][0];
          assert.ok(victim);
          const from = performance.now() - started;
          await victim.kill("SIGKILL");
          await sleep(1_000);
          await victim.restart();
          windows.push({ victim: `${name} replica 1`, from, to: performance.now() - started });
        }
      },
    },
  );
  assert.equal(run.refused.length, 0, `refused: ${run.refused.slice(0, 3).join("; ")}`);
  assert.equal(run.acknowledged.size, 600);
  await assertInvariants(sql, run.acknowledged, run.initial);

  // What the clients saw during each kill (the figures of the issue's point 2).
  const offset = started - run.started;
  for (const window of windows) {
    const seen = run.retried.filter(
      (r) => r.at - offset >= window.from && r.at - offset <= window.to + 3_000,
    );
    const span = seen.length > 0 ? (seen.at(-1)?.at ?? 0) - (seen[0]?.at ?? 0) : 0;
    const kinds = [...new Set(seen.map((r) => r.error))].slice(0, 3).join("; ");
    t.diagnostic(
      `${window.victim} killed (down ${((window.to - window.from) / 1000).toFixed(1)} s): ${seen.length} failed attempts over ${(span / 1000).toFixed(2)} s${kinds ? ` (${kinds})` : ""}`,
    );
  }
  t.diagnostic(`${run.attempts} attempts for ${run.acknowledged.size} orders`);
});

test("a replica told to stop leaves the edge before it stops answering", { skip }, async () => {
  const users = createClient(UserService, createGrpcTransport({ baseUrl: cluster.edges.users }));
  const { user } = await users.createUser({
    name: "Drained",
    email: `drained-${crypto.randomUUID()}@example.com`,
  });
  const victim = cluster.replicas.users[1];
  assert.ok(victim);
  let failures = 0;
  let calls = 0;
  let stopping = true;
  const caller = (async () => {
    while (stopping) {
      calls++;
      await users.getUser({ id: user?.id ?? "" }, { timeoutMs: 2_000 }).catch(() => failures++);
      await sleep(10);
    }
  })();
  await sleep(300);
  await victim.kill("SIGTERM");
  await sleep(1_000);
  stopping = false;
  await caller;
  await victim.restart();
  assert.ok(calls > 50, `${calls} calls`);
  assert.equal(failures, 0, `${failures} of ${calls} calls failed while a replica drained`);
});
