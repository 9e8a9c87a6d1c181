"use client";

import type { HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";
import type { PeerStats, WatchStatsResponse } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { useRouter } from "next/navigation";
import { useMemo } from "react";
import { healthText } from "../lib/health-text.ts";
import type { ValueView } from "../lib/live-value.ts";
import { type ServiceName, serviceNames } from "../lib/service-urls.ts";
import { useLiveValue, useShop, useStarted } from "./shop-provider.tsx";

/** Where each node sits in the picture (SVG units). */
const places: Record<ServiceName | "outside", { x: number; y: number }> = {
  outside: { x: 90, y: 200 },
  orders: { x: 470, y: 200 },
  users: { x: 760, y: 70 },
  inventory: { x: 760, y: 330 },
};

/** An edge: who calls whom, and whose figures say how it goes. */
interface Edge {
  from: ServiceName | "outside";
  to: ServiceName;
  figures: PeerStats | undefined;
}

/**
 * The mesh's topology, live: the services as nodes coloured by their health (grpc.health.v1 Watch),
 * an edge for each caller and callee with its rate, error rate and p99 from the runtime's own
 * figures (WatchStats: the client's side between services, the server's side from outside).
 * Choosing a node or an edge opens the tap on the service that answers those calls.
 */
export function TopologyView() {
  const shop = useShop();
  const router = useRouter();
  const streams = useMemo(
    () => serviceNames.flatMap((name) => [shop.health[name], shop.stats[name]]),
    [shop],
  );
  useStarted(streams);
  const health = {
    users: useLiveValue(shop.health.users),
    orders: useLiveValue(shop.health.orders),
    inventory: useLiveValue(shop.health.inventory),
  };
  const stats = {
    users: useLiveValue(shop.stats.users).value,
    orders: useLiveValue(shop.stats.orders).value,
    inventory: useLiveValue(shop.stats.inventory).value,
  };
  const edges: Edge[] = [
    ...serviceNames.map((name) => ({
      from: "outside" as const,
      to: name,
      figures: peer(stats[name], "callers", "outside"),
    })),
    // Between services, the caller's figures: they count the calls that never got an answer too.
    { from: "orders", to: "users", figures: peer(stats.orders, "upstreams", "users") },
    { from: "orders", to: "inventory", figures: peer(stats.orders, "upstreams", "inventory") },
  ];
  // A node taps every call its service answers; an edge, those of its caller only.
  const openTap = (service: ServiceName, caller?: ServiceName | "outside") =>
    router.push(`/tap?service=${service}${caller === undefined ? "" : `&caller=${caller}`}`);
  return (
    <div className="page">
      <div className="page-title">
        <h1>Topology</h1>
      </div>
      <section className="card" aria-labelledby="topology-title">
        <h2 id="topology-title" className="visually-hidden">
          The services and the calls between them
        </h2>
        <p className="muted">
          Live from each service&apos;s health and statistics (the last 10 s). Choose a service or
          an edge to tap its calls.
        </p>
        <svg
          className="topology"
          viewBox="0 0 900 400"
          role="img"
          aria-label="The services, coloured by health, and the calls between them"
        >
          <defs>
            <marker
              id="arrow"
              viewBox="0 0 10 10"
              refX="10"
              refY="5"
              markerWidth="12"
              markerHeight="12"
              markerUnits="userSpaceOnUse"
              orient="auto-start-reverse"
            >
              <path d="M 0 0 L 10 5 L 0 10 z" fill="#8a96a8" />
            </marker>
          </defs>
          {edges.map((edge) => (
            <EdgeLine key={`${edge.from}-${edge.to}`} edge={edge} onOpen={openTap} />
          ))}
          <g data-node="outside">
            <rect
              x={places.outside.x - 70}
              y={places.outside.y - 28}
              width={140}
              height={56}
              rx={10}
              className="node node-outside"
            />
            <text
              x={places.outside.x}
              y={places.outside.y + 5}
              textAnchor="middle"
              className="node-name"
            >
              outside
            </text>
          </g>
          {serviceNames.map((name) => (
            <ServiceNode
              key={name}
              name={name}
              health={health[name]}
              stats={stats[name]}
              onOpen={openTap}
            />
          ))}
        </svg>
      </section>
    </div>
  );
}

function peer(
  stats: WatchStatsResponse | undefined,
  side: "upstreams" | "callers",
  name: string,
): PeerStats | undefined {
  return stats?.[side].find((row) => row.peer === name);
}

function ServiceNode({
  name,
  health,
  stats,
  onOpen,
}: {
  name: ServiceName;
  health: ValueView<HealthCheckResponse_ServingStatus>;
  stats: WatchStatsResponse | undefined;
  onOpen: (service: ServiceName) => void;
}) {
  const { x, y } = places[name];
  const status = healthText(health);
  const rate = (stats?.methods ?? []).reduce((sum, m) => sum + m.requestsPerSecond, 0);
  return (
    // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a button element
    <g
      data-node={name}
      data-health={status}
      role="button"
      tabIndex={0}
      aria-label={`${name}: ${status}, ${rate.toFixed(1)} calls a second; tap its calls`}
      className="node-link"
      onClick={() => onOpen(name)}
      onKeyDown={(event) => {
        if (event.key === "Enter" || event.key === " ") onOpen(name);
      }}
    >
      <rect
        x={x - 85}
        y={y - 34}
        width={170}
        height={68}
        rx={12}
        className={`node node-${status.toLowerCase()}`}
      />
      <text x={x} y={y - 6} textAnchor="middle" className="node-name">
        {name}
      </text>
      <text x={x} y={y + 16} textAnchor="middle" className="node-figures">
        {status} · {rate.toFixed(1)}/s
      </text>
    </g>
  );
}

function EdgeLine({
  edge,
  onOpen,
}: {
  edge: Edge;
  onOpen: (service: ServiceName, caller: ServiceName | "outside") => void;
}) {
  const from = places[edge.from];
  const to = places[edge.to];
  // From the edge of one box to the edge of the other, roughly.
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy);
  const start = { x: from.x + (dx / length) * 90, y: from.y + (dy / length) * 40 };
  const end = { x: to.x - (dx / length) * 95, y: to.y - (dy / length) * 42 };
  const figures = edge.figures;
  const rate = figures?.requestsPerSecond ?? 0;
  const errors = figures?.errorsPerSecond ?? 0;
  const failing = errors > 0;
  const errorShare = rate > 0 ? Math.min(1, errors / rate) : 0;
  const label = figures
    ? `${rate.toFixed(1)}/s · ${(errorShare * 100).toFixed(0)}% errors · p99 ${figures.latencyP99Ms.toFixed(1)} ms`
    : "no calls yet";
  // The label sits along the line (nearer its start for the edges from outside, which cross the
  // others further on), a little off it.
  const along = edge.from === "outside" && edge.to !== "orders" ? 0.3 : 0.5;
  const mid = {
    x: start.x + (end.x - start.x) * along + (dy / length) * 14,
    y: start.y + (end.y - start.y) * along - (dx / length) * 14,
  };
  return (
    // biome-ignore lint/a11y/useSemanticElements: an SVG group cannot be a button element
    <g
      data-edge={`${edge.from}-${edge.to}`}
      data-rps={rate}
      data-failing={failing}
      role="button"
      tabIndex={0}
      aria-label={`${edge.from} to ${edge.to}: ${label}; tap the calls`}
      className="edge-link"
      onClick={() => onOpen(edge.to, edge.from)}
      onKeyDown={(event) => {
        if (event.key === "Enter" || event.key === " ") onOpen(edge.to, edge.from);
      }}
    >
      {/* A wide, unseen line to click on; the thin one shows the edge. */}
      <line x1={start.x} y1={start.y} x2={end.x} y2={end.y} className="edge-hit" />
      <line
        x1={start.x}
        y1={start.y}
        x2={end.x}
        y2={end.y}
        className={`edge${failing ? " edge-failing" : rate > 0 ? " edge-live" : ""}`}
        strokeWidth={1.5 + Math.min(6, Math.log2(1 + rate))}
        markerEnd="url(#arrow)"
      />
      <text x={mid.x} y={mid.y} textAnchor="middle" className="edge-figures">
        {label}
      </text>
    </g>
  );
}
