// The scaled-out shop on real parts (scripts/cluster.ts): a PostgreSQL server of its own (Debian's),
// two replicas of each service on it and Caddy (Debian's, with deploy/base/Caddyfile) in front of
// each. Orders are placed through the edges at concurrency 16 with request ids while one replica of
// each service in turn is killed with SIGKILL and restarted, and 200 watchers (100 over Connect,
// 100 over gRPC) follow the orders through the edge, resuming from their last revision when their
// stream breaks: no acknowledged order is lost or doubled, the stock adds up, and every watcher has
// every change exactly once, in order; the errors clients saw during each kill, and for how long,
// are reported. A replica told to stop (SIGTERM) leaves the edge before it stops answering.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
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
  spawnSync("caddy", ["version"]).status === 0 ? undefined : "Caddy (apt-get install caddy)",
].filter(Boolean);
const skip = missing.length > 0 ? `not installed here: ${missing.join(", ")}` : false;

let cluster: Cluster;
let sql: Sql;
before(async () => {
  if (skip) return;
  cluster = await startCluster({
    // Half-done orders are rolled back soon after a crash, so the test can wait for it.
    // Behind the edge, every watcher comes from the edge's address: one client to the replicas.
    env: {
      PENDING_TIMEOUT_MS: "1000",
      SWEEP_INTERVAL_MS: "200",
      UPSTREAM_TIMEOUT_MS: "1000",
      MAX_WATCHES_PER_CLIENT: "1000",
    },
  });
  sql = postgres(cluster.databaseUrl, { max: 2, onnotice: () => {} });
});
after(async () => {
  await sql?.end();
  await cluster?.stop();
});

test("orders and 200 watchers through the edges while a replica of each service is killed: nothing lost or doubled, every change once, in order", {
  skip,
}, async (t) => {
  /** What the clients saw while each replica was down: failed attempts and their span. */
  const windows: { victim: string; from: number; to: number }[] = [];
  let started = 0;
  const watching = watchOrders(await orderRevision());
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

  // Every watcher has every change of the log since it started, once each, in order.
  const watchers = await watching.until(await orderRevision());
  const expected = (
    await sql<{ revision: string }[]>`
      select revision::text as revision from orders.changes as c
      where c.revision > ${String(watching.from)} order by c.revision`
  ).map((row) => BigInt(row.revision));
  assert.ok(expected.length >= 600, `${expected.length} changes`);
  for (const [i, watcher] of watchers.entries()) {
    assert.deepEqual(watcher.revisions, expected, `watcher ${i} (${watcher.protocol})`);
  }
  const resumed = watchers.reduce((sum, watcher) => sum + watcher.resumed, 0);
  t.diagnostic(
    `${watchers.length} watchers, ${resumed} resumptions, each had all ${expected.length} changes once, in order`,
  );

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

/** The newest revision of the orders' change log. */
async function orderRevision(): Promise<bigint> {
  const [row] = await sql<{ revision: string }[]>`
    select coalesce(max(revision), 0)::text as revision from orders.changes`;
  return BigInt(row?.revision ?? "0");
}

/**
 * 100 watchers over Connect and 100 over gRPC following the orders through the edge from `from`,
 * each resuming from its last revision when its stream breaks. `until(revision)` waits until all
 * have reached it, stops them and gives what each received.
 */
function watchOrders(from: bigint) {
  const transports = {
    connect: createConnectTransport({ baseUrl: cluster.edges.orders, httpVersion: "2" }),
    grpc: createGrpcTransport({ baseUrl: cluster.edges.orders }),
  };
  const stop = new AbortController();
  const watchers = (["connect", "grpc"] as const).flatMap((protocol) =>
    Array.from({ length: 100 }, () => ({
      protocol,
      revisions: [] as bigint[],
      last: from,
      resumed: 0,
    })),
  );
  const running = watchers.map(async (watcher) => {
    const client = createClient(OrderService, transports[watcher.protocol]);
    while (!stop.signal.aborted) {
      try {
        for await (const res of client.watchOrders(
          { startRevision: watcher.last },
          { signal: stop.signal },
        )) {
          for (const event of res.events) watcher.revisions.push(event.revision);
          watcher.last = res.revision;
        }
      } catch {
        if (stop.signal.aborted) return;
        // The stream broke with its replica: resume through the edge from the last revision.
        watcher.resumed++;
        await sleep(100);
      }
    }
  });
  return {
    from,
    async until(revision: bigint) {
      const deadline = Date.now() + 60_000;
      while (watchers.some((watcher) => watcher.last < revision)) {
        const behind = watchers.filter((watcher) => watcher.last < revision).length;
        assert.ok(Date.now() < deadline, `${behind} watchers short of revision ${revision}`);
        await sleep(100);
      }
      stop.abort();
      await Promise.all(running);
      return watchers;
    },
  };
}

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
