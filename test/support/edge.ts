// What the compose file and the Kubernetes manifests both promise of orders' upstreams.
import assert from "node:assert/strict";

/**
 * Orders calls users and inventory through the edge (`edge`), each on the port that service's
 * edge site listens on, `portOf` it.
 */
export function assertOrdersCallThroughEdge(
  config: { usersUrl: string; inventoryUrl: string },
  portOf: (upstream: "users" | "inventory") => number,
): void {
  for (const [upstream, url] of [
    ["users", config.usersUrl],
    ["inventory", config.inventoryUrl],
  ] as const) {
    const target = new URL(url);
    assert.equal(target.hostname, "edge", `orders calls ${upstream} through the edge`);
    assert.equal(Number(target.port), portOf(upstream), `on ${upstream}'s port`);
  }
}
