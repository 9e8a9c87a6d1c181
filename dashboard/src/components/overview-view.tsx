"use client";

import type { MethodStats, WatchStatsResponse } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import { type ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { formatError } from "../lib/errors.ts";
import { formatNumber } from "../lib/format.ts";
import { healthText } from "../lib/health-text.ts";
import { type ServiceName, serviceNames } from "../lib/service-urls.ts";
import { useCollection, useLiveValue, useShop, useStarted } from "./shop-provider.tsx";
import { StreamBadge } from "./stream-status.tsx";

const protoServices: Record<ServiceName, string> = {
  users: "shop.user.v1.UserService",
  orders: "shop.order.v1.OrderService",
  inventory: "shop.inventory.v1.InventoryService",
};

/** The overview: what the shop holds, and every service's health and live request statistics. */
export function OverviewView() {
  const shop = useShop();
  const streams = useMemo(
    () => serviceNames.flatMap((name) => [shop.health[name], shop.stats[name]]),
    [shop],
  );
  useStarted(streams);
  return (
    <div className="page">
      <div className="page-title">
        <h1>Overview</h1>
      </div>
      <Totals />
      <section className="mesh" aria-labelledby="mesh-title">
        <h2 className="section-title" id="mesh-title">
          Mesh
        </h2>
        <div className="services">
          {serviceNames.map((name) => (
            <ServiceCard key={name} name={name} />
          ))}
        </div>
      </section>
    </div>
  );
}

function Totals() {
  const shop = useShop();
  const users = useCollection(shop.userList);
  const orders = useCollection(shop.orderList);
  const products = useCollection(shop.productList);
  // Users and orders are counted by the service (the page holds neither), again after changes.
  const userCount = useCount(
    useCallback(
      async (signal: AbortSignal) =>
        (await shop.users.listUsers({ pageSize: 1 }, { signal })).totalSize,
      [shop],
    ),
    users.revision,
  );
  const orderCount = useCount(
    useCallback(
      async (signal: AbortSignal) =>
        (await shop.orders.listOrders({ pageSize: 1 }, { signal })).totalSize,
      [shop],
    ),
    orders.revision,
  );
  const confirmed = useCount(
    useCallback(
      async (signal: AbortSignal) =>
        (await shop.orders.listOrders({ pageSize: 1, status: OrderStatus.CONFIRMED }, { signal }))
          .totalSize,
      [shop],
    ),
    orders.revision,
  );
  const units = useMemo(
    () => [...products.items.values()].reduce((sum, p) => sum + p.stock, 0n),
    [products.items],
  );
  return (
    <section className="tiles" aria-label="Totals">
      <Tile label="Users" value={userCount === undefined ? "…" : String(userCount)}>
        <StreamBadge name="users" state={users} />
      </Tile>
      <Tile
        label="Orders"
        value={orderCount === undefined ? "…" : String(orderCount)}
        detail={confirmed === undefined ? undefined : `${confirmed} confirmed`}
      >
        <StreamBadge name="orders" state={orders} />
      </Tile>
      <Tile
        label="Products"
        value={products.loaded ? String(products.items.size) : "…"}
        detail={products.loaded ? `${units} units in stock` : undefined}
      >
        <StreamBadge name="stock" state={products} />
      </Tile>
    </section>
  );
}

/** How often a count is asked again at most, while its collection changes. */
const countEveryMs = 1_000;

/**
 * `count()`, asked when the collection's revision is first known and again after it changes, at
 * most once per countEveryMs: a burst of changes costs one call.
 */
function useCount(
  count: (signal: AbortSignal) => Promise<number>,
  revision: bigint | undefined,
): number | undefined {
  const [value, setValue] = useState<number>();
  const last = useRef(0);
  const mounted = useRef(new AbortController());
  useEffect(() => {
    const controller = new AbortController();
    mounted.current = controller;
    return () => controller.abort();
  }, []);
  useEffect(() => {
    if (revision === undefined) return;
    const timer = setTimeout(
      () => {
        last.current = Date.now();
        const { signal } = mounted.current;
        // A count that fails keeps the last one shown; the next change asks again.
        count(signal).then(
          (n) => signal.aborted || setValue(n),
          () => {},
        );
      },
      Math.max(0, last.current + countEveryMs - Date.now()),
    );
    return () => clearTimeout(timer);
  }, [revision, count]);
  return value;
}

function Tile({
  label,
  value,
  detail,
  children,
}: {
  label: string;
  value: string;
  detail?: string | undefined;
  children: ReactNode;
}) {
  return (
    <div className="card tile">
      <div className="tile-head">
        <span className="tile-label">{label}</span>
        {children}
      </div>
      <span className="tile-value" data-total={label.toLowerCase()}>
        {value}
      </span>
      {detail && <span className="muted">{detail}</span>}
    </div>
  );
}

function ServiceCard({ name }: { name: ServiceName }) {
  const shop = useShop();
  const health = useLiveValue(shop.health[name]);
  const stats = useLiveValue(shop.stats[name]);
  const history = useRateHistory(stats.value);
  const status = healthText(health);
  const methods = useMemo(
    () => [...(stats.value?.methods ?? [])].sort((a, b) => a.method.localeCompare(b.method)),
    [stats.value],
  );
  const rate = methods.reduce((sum, m) => sum + m.requestsPerSecond, 0);
  const errors = methods.reduce((sum, m) => sum + m.errorsPerSecond, 0);
  const titleId = `service-${name}-title`;
  return (
    <section className="card service" data-service={name} aria-labelledby={titleId}>
      <div className="service-head">
        <div className="card-title">
          <div>
            <h3 id={titleId}>{name}</h3>
            <span className="muted small-text">
              {protoServices[name]} · <code>{shop.urls[name]}</code>
            </span>
          </div>
          <span
            className={`health health-${status.toLowerCase()}`}
            data-health={status}
            title={health.error ? formatError(health.error) : undefined}
          >
            <span className="visually-hidden">health: </span>
            {status}
          </span>
        </div>
        <div className="service-summary">
          <div>
            <span className="metric" data-metric="rps">
              {formatNumber(rate)}
            </span>{" "}
            <span className="muted">req/s</span>
          </div>
          <div>
            <span className={errors > 0 ? "metric metric-bad" : "metric"} data-metric="eps">
              {formatNumber(errors)}
            </span>{" "}
            <span className="muted">errors/s</span>
          </div>
          <Sparkline values={history} label={`${name} requests per second, last minute`} />
          <StreamBadge name="stats" state={stats} showName />
        </div>
      </div>
      <div className="service-body">
        {stats.status !== "live" && stats.error && (
          <p className="notice notice-offline">
            Statistics unavailable: {formatError(stats.error)}.
          </p>
        )}
        {methods.length === 0 ? (
          <p className="empty">
            {stats.value
              ? "No calls yet."
              : stats.status === "connecting"
                ? "Loading…"
                : "No data."}
          </p>
        ) : (
          <div className="table-scroll">
            <table className="methods">
              <caption className="visually-hidden">
                Calls per method over the last {stats.value?.windowSeconds ?? 0} seconds
              </caption>
              <thead>
                <tr>
                  <th scope="col">Method</th>
                  <th scope="col" className="number">
                    req/s
                  </th>
                  <th scope="col" className="number">
                    err/s
                  </th>
                  <th scope="col" className="number">
                    p50 ms
                  </th>
                  <th scope="col" className="number">
                    p99 ms
                  </th>
                  <th scope="col" className="number optional">
                    calls
                  </th>
                  <th scope="col" className="number optional">
                    errors
                  </th>
                  <th scope="col" className="number optional">
                    streams
                  </th>
                </tr>
              </thead>
              <tbody>
                {methods.map((method) => (
                  <MethodRow key={method.method} method={method} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </section>
  );
}

function MethodRow({ method }: { method: MethodStats }) {
  const shortName = method.method.slice(method.method.indexOf("/") + 1);
  return (
    <tr data-method={method.method}>
      <th scope="row" title={method.method}>
        {shortName}
      </th>
      <td className="number rps">{formatNumber(method.requestsPerSecond)}</td>
      <td className={method.errorsPerSecond > 0 ? "number eps metric-bad" : "number eps"}>
        {formatNumber(method.errorsPerSecond)}
      </td>
      <td className="number p50">{formatNumber(method.latencyP50Ms)}</td>
      <td className="number p99">{formatNumber(method.latencyP99Ms)}</td>
      <td className="number optional total">{String(method.totalRequests)}</td>
      <td className="number optional errors">{String(method.totalErrors)}</td>
      <td className="number optional streams">{String(method.activeStreams)}</td>
    </tr>
  );
}

const historyLength = 60;

/** The service's total request rate of the last minute, one sample per stats message. */
function useRateHistory(stats: WatchStatsResponse | undefined): number[] {
  const [history, setHistory] = useState<number[]>([]);
  useEffect(() => {
    if (!stats) return;
    const rate = stats.methods.reduce((sum, m) => sum + m.requestsPerSecond, 0);
    setHistory((current) => [...current, rate].slice(-historyLength));
  }, [stats]);
  return history;
}

function Sparkline({ values, label }: { values: number[]; label: string }) {
  const width = 120;
  const height = 28;
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, values.length - 1);
  const points = values
    .map(
      (value, i) =>
        `${(i * step).toFixed(1)},${(height - 2 - (value / max) * (height - 4)).toFixed(1)}`,
    )
    .join(" ");
  return (
    <svg className="sparkline" width={width} height={height} role="img" aria-label={label}>
      <title>{label}</title>
      {values.length > 1 && <polyline points={points} fill="none" />}
    </svg>
  );
}
