"use client";

import { type Order, OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import { useState } from "react";
import { describeError, formatError } from "../lib/errors.ts";
import { formatMoney, formatTime, shortId } from "../lib/format.ts";
import type { OrderFilter } from "../lib/sources.ts";
import { ActivityFeed } from "./activity-feed.tsx";
import { Pager } from "./pager.tsx";
import { PlaceOrderForm } from "./place-order-form.tsx";
import { useCollection, useLivePage, useShop, useUser } from "./shop-provider.tsx";
import { StreamBadge, StreamNotice } from "./stream-status.tsx";
import { UserPicker } from "./user-picker.tsx";

const pageSize = 50;
const everyOrder: OrderFilter = {};

/**
 * The orders page: one page of orders at a time, newest first, listed by the service (which also
 * filters them by customer and status) and kept live by WatchOrders; place and cancel. A
 * customer's list and stream hold only their own orders (the service scopes them to the token's
 * subject).
 */
export function OrdersView() {
  const shop = useShop();
  const customer = shop.identity?.role === "customer" ? shop.identity.userId : undefined;
  const orders = useCollection(shop.orderList);
  const products = useCollection(shop.productList);
  const { page, view: shown } = useLivePage(shop.orderPages, shop.orderList, everyOrder, pageSize);
  const filter = shown.filter;
  const [cancelling, setCancelling] = useState<ReadonlySet<string>>(new Set());
  const [cancelOutcome, setCancelOutcome] = useState<{ ok: boolean; text: string }>();
  const customerName = useUser(customer)?.name;
  const filteredName = useUser(filter.userId)?.name;

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
              `${shortId(entry.item.id)} by ${shop.userNames.get(entry.item.userId)?.name ?? shortId(entry.item.userId)}, ${formatMoney(entry.item.totalCents)}, ${statusText(entry.item.status)}`
            }
          />
        </div>
        <section className="card" aria-labelledby="orders-table-title">
          <div className="card-title">
            <h2 id="orders-table-title">
              {customer !== undefined
                ? `Orders of ${customerName ?? shortId(customer)}`
                : filter.userId !== undefined
                  ? `Orders of ${filteredName ?? shortId(filter.userId)}`
                  : "All orders"}
            </h2>
            <span className="muted" data-count="orders">
              {shown.total === undefined ? "" : `${shown.total} in total`}
            </span>
          </div>
          <div className="filters">
            {customer === undefined && (
              <div className="field inline">
                <label htmlFor="orders-filter">Placed by</label>
                <UserPicker
                  id="orders-filter"
                  searchFor="who placed the orders"
                  value={filter.userId ?? ""}
                  onChange={(userId) => page.show({ ...filter, userId: userId || undefined })}
                  none="Everyone"
                />
              </div>
            )}
            <div className="field inline">
              <label htmlFor="orders-status">Status</label>
              <select
                id="orders-status"
                value={filter.status ?? ""}
                onChange={(event) =>
                  page.show({
                    ...filter,
                    status:
                      event.target.value === ""
                        ? undefined
                        : (Number(event.target.value) as OrderStatus),
                  })
                }
              >
                <option value="">Any</option>
                <option value={OrderStatus.CONFIRMED}>confirmed</option>
                <option value={OrderStatus.CANCELLED}>cancelled</option>
              </select>
            </div>
          </div>
          <StreamNotice
            service="orders"
            url={shop.urls.orders}
            state={orders}
            hasData={shown.total !== undefined}
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
          {shown.total === undefined && !shown.error ? (
            <p className="empty">Loading orders…</p>
          ) : shown.rows.length === 0 && !shown.loading ? (
            <p className="empty">
              {filter.status !== undefined
                ? `No ${statusText(filter.status)} orders here.`
                : customer !== undefined
                  ? "You have no orders yet. Place one with the form."
                  : filter.userId === undefined
                    ? "No orders yet. Place one with the form."
                    : `${filteredName ?? shortId(filter.userId)} has no orders yet.`}
            </p>
          ) : (
            <div className="table-scroll" aria-busy={shown.loading}>
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
                  {shown.rows.map((order) => {
                    const fresh = shown.highlighted.has(order.id);
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
                        <td>
                          <UserName id={order.userId} />
                        </td>
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
            </div>
          )}
          <Pager page={page} view={shown} noun="orders" pageSize={pageSize} />
        </section>
      </div>
    </div>
  );
}

/** A user's name, once fetched; the short id until then (or when there is no such user). */
function UserName({ id }: { id: string }) {
  const user = useUser(id);
  return <span title={id}>{user?.name ?? shortId(id)}</span>;
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
