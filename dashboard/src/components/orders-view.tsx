"use client";

import { type Order, OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import { useMemo, useState } from "react";
import { describeError, formatError } from "../lib/errors.ts";
import { formatMoney, formatTime, shortId, timestampMs } from "../lib/format.ts";
import { ActivityFeed } from "./activity-feed.tsx";
import { PlaceOrderForm } from "./place-order-form.tsx";
import { useCollection, useShop } from "./shop-provider.tsx";
import { StreamBadge, StreamNotice } from "./stream-status.tsx";

const shownRows = 200;

/**
 * The orders page: every order live from WatchOrders, filterable by user; place and cancel. A
 * customer's stream holds only their own orders (the service scopes it to the token's subject).
 */
export function OrdersView() {
  const shop = useShop();
  const customer = shop.identity?.role === "customer" ? shop.identity.userId : undefined;
  const orders = useCollection(shop.orderList);
  const users = useCollection(shop.userList);
  const products = useCollection(shop.productList);
  const [userFilter, setUserFilter] = useState("");
  const [cancelling, setCancelling] = useState<ReadonlySet<string>>(new Set());
  const [cancelOutcome, setCancelOutcome] = useState<{ ok: boolean; text: string }>();

  const rows = useMemo(
    () =>
      [...orders.items.values()]
        .filter(
          (order) => customer !== undefined || userFilter === "" || order.userId === userFilter,
        )
        .sort(
          (a, b) =>
            timestampMs(b.createTime) - timestampMs(a.createTime) || b.id.localeCompare(a.id),
        ),
    [orders.items, userFilter, customer],
  );
  const customers = useMemo(
    () => [...users.items.values()].sort((a, b) => a.name.localeCompare(b.name)),
    [users.items],
  );

  async function cancel(order: Order) {
    setCancelling((current) => new Set(current).add(order.id));
    setCancelOutcome(undefined);
    try {
      await shop.orders.cancelOrder({ id: order.id });
      setCancelOutcome({ ok: true, text: `Cancelled order ${shortId(order.id)}.` });
    } catch (error) {
      setCancelOutcome({
        ok: false,
        text: `Could not cancel order ${shortId(order.id)}: ${formatError(describeError(error))}`,
      });
    } finally {
      setCancelling((current) => {
        const next = new Set(current);
        next.delete(order.id);
        return next;
      });
    }
  }

  const userName = (id: string) => users.items.get(id)?.name ?? shortId(id);
  const productName = (sku: string) => products.items.get(sku)?.name ?? sku;

  return (
    <div className="page">
      <div className="page-title">
        <h1>Orders</h1>
        <StreamBadge name="orders" state={orders} />
      </div>
      <div className="layout-side">
        <div className="stack">
          <PlaceOrderForm />
          <ActivityFeed
            title="Recent order changes"
            entries={orders.activity}
            describe={(entry) =>
              `${shortId(entry.item.id)} by ${userName(entry.item.userId)}, ${formatMoney(entry.item.totalCents)}, ${statusText(entry.item.status)}`
            }
          />
        </div>
        <section className="card" aria-labelledby="orders-table-title">
          <div className="card-title">
            <h2 id="orders-table-title">
              {customer === undefined ? "All orders" : `Orders of ${userName(customer)}`}
            </h2>
            {customer === undefined && (
              <div className="field inline">
                <label htmlFor="orders-filter">Placed by</label>
                <select
                  id="orders-filter"
                  value={userFilter}
                  onChange={(event) => setUserFilter(event.target.value)}
                >
                  <option value="">Everyone</option>
                  {customers.map((user) => (
                    <option key={user.id} value={user.id}>
                      {user.name} ({user.email})
                    </option>
                  ))}
                </select>
              </div>
            )}
          </div>
          <StreamNotice
            service="orders"
            url={shop.urls.orders}
            state={orders}
            hasData={orders.loaded}
            onRetry={shop.orderList.retryNow}
          />
          <p
            className={
              cancelOutcome ? (cancelOutcome.ok ? "outcome ok" : "outcome error") : "outcome"
            }
            role="status"
            data-outcome="cancel-order"
          >
            {cancelOutcome?.text}
          </p>
          {!orders.loaded ? (
            <p className="empty">Loading orders…</p>
          ) : rows.length === 0 ? (
            <p className="empty">
              {customer !== undefined
                ? "You have no orders yet. Place one with the form."
                : userFilter === ""
                  ? "No orders yet. Place one with the form."
                  : `${userName(userFilter)} has no orders yet.`}
            </p>
          ) : (
            <div className="table-scroll">
              <table>
                <caption className="visually-hidden">Orders, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Order</th>
                    <th scope="col">Customer</th>
                    <th scope="col" className="optional">
                      Items
                    </th>
                    <th scope="col" className="number">
                      Total
                    </th>
                    <th scope="col">Status</th>
                    <th scope="col" className="optional">
                      Placed
                    </th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.slice(0, shownRows).map((order) => {
                    const fresh = orders.highlighted.has(order.id);
                    return (
                      <tr
                        key={order.id}
                        data-id={order.id}
                        data-highlighted={fresh || undefined}
                        className={fresh ? "fresh" : undefined}
                      >
                        <td>
                          <code title={order.id}>{shortId(order.id)}</code>
                        </td>
                        <td>{userName(order.userId)}</td>
                        <td className="optional items">
                          {order.items
                            .map((item) => `${item.quantity} × ${productName(item.sku)}`)
                            .join(", ")}
                        </td>
                        <td className="number">{formatMoney(order.totalCents)}</td>
                        <td className="status">
                          <span
                            className={`tag ${order.status === OrderStatus.CONFIRMED ? "tag-ok" : "tag-muted"}`}
                          >
                            {statusText(order.status)}
                          </span>
                        </td>
                        <td className="optional muted">{formatTime(order.createTime)}</td>
                        <td>
                          {order.status === OrderStatus.CONFIRMED && (
                            <button
                              type="button"
                              className="secondary small"
                              aria-label={`Cancel order ${shortId(order.id)}`}
                              disabled={cancelling.has(order.id)}
                              onClick={() => cancel(order)}
                            >
                              {cancelling.has(order.id) ? "Cancelling…" : "Cancel"}
                            </button>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              {rows.length > shownRows && (
                <p className="muted">
                  Showing the newest {shownRows} of {rows.length} orders.
                </p>
              )}
            </div>
          )}
        </section>
      </div>
    </div>
  );
}

function statusText(status: OrderStatus): string {
  switch (status) {
    case OrderStatus.CONFIRMED:
      return "confirmed";
    case OrderStatus.CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}
