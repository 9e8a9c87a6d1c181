// Start-up time of each service, from spawning `node services/<name>/src/main.ts` to SERVING over
// grpc.health.v1, and its resident memory at rest once it has settled.
import { setTimeout as sleep } from "node:timers/promises";
import { type Pinning, rssOf } from "../lib/processes.ts";
import { startService } from "../lib/services.ts";

/** Start-up samples of one service. */
export interface StartupSample {
  service: "users" | "inventory" | "orders";
  /** The first start on an empty database: migrations (and, for inventory, the demo catalog). */
  firstStartMs: number;
  /** Later starts on the migrated database. */
  startMs: number[];
  /** RSS `settleMs` after SERVING, per later start. */
  restRss: number[];
}

/** Starts each service once on the empty database, then `samples` more times, one at a time. */
export async function measureStartup(options: {
  databaseUrl: string;
  pinning: Pinning;
  samples: number;
  settleMs: number;
}): Promise<StartupSample[]> {
  const names = ["users", "inventory", "orders"] as const;
  const env = (name: (typeof names)[number]) => ({
    DATABASE_URL: options.databaseUrl,
    ...(name === "orders"
      ? { USERS_URL: "http://127.0.0.1:1", INVENTORY_URL: "http://127.0.0.1:1" }
      : {}),
  });
  const results: StartupSample[] = [];
  for (const name of names) {
    const first = await startService(name, env(name), options.pinning);
    await first.stop();
    results.push({ service: name, firstStartMs: first.startMs, startMs: [], restRss: [] });
  }
  for (let i = 0; i < options.samples; i++) {
    for (const sample of results) {
      const service = await startService(sample.service, env(sample.service), options.pinning);
      sample.startMs.push(service.startMs);
      await sleep(options.settleMs);
      sample.restRss.push(rssOf(service.pid));
      await service.stop();
    }
  }
  return results;
}
