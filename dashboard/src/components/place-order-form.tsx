"use client";

import { type FormEvent, useMemo, useRef, useState } from "react";
import { describeError, formatError } from "../lib/errors.ts";
import { formatMoney, shortId } from "../lib/format.ts";
import {
  newRequestId,
  type OrderLineInput,
  type OrderProblems,
  validateOrder,
} from "../lib/validation.ts";
import { useCollection, useShop } from "./shop-provider.tsx";
import { UserPicker } from "./user-picker.tsx";

type Outcome = { ok: boolean; text: string };

const emptyLine = (): OrderLineInput => ({ sku: "", quantity: "1" });

/**
 * CreateOrder from the page. Each distinct submission gets a new request_id; sending the same order
 * again after a failure reuses it, so a retry after a lost response never places a second order.
 */
export function PlaceOrderForm() {
  const shop = useShop();
  const products = useCollection(shop.productList);
  // A customer places orders for themselves only.
  const customer = shop.identity?.role === "customer" ? shop.identity.userId : undefined;
  const [chosenUserId, setUserId] = useState("");
  const userId = customer ?? chosenUserId;
  const [lines, setLines] = useState<OrderLineInput[]>([emptyLine()]);
  const [problems, setProblems] = useState<OrderProblems>({ line: {} });
  const [outcome, setOutcome] = useState<Outcome>();
  const [pending, setPending] = useState(false);
  const attempt = useRef<{ fingerprint: string; requestId: string } | undefined>(undefined);

  const productOptions = useMemo(
    () => [...products.items.values()].sort((a, b) => a.name.localeCompare(b.name)),
    [products.items],
  );

  const setLine = (index: number, change: Partial<OrderLineInput>) =>
    setLines((current) => current.map((line, i) => (i === index ? { ...line, ...change } : line)));

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setOutcome(undefined);
    const checked = validateOrder({ userId, lines }, (sku) => products.items.get(sku)?.stock);
    if ("problems" in checked) {
      setProblems(checked.problems);
      return;
    }
    setProblems({ line: {} });
    const fingerprint = JSON.stringify(checked.order, (_, value) =>
      typeof value === "bigint" ? value.toString() : value,
    );
    if (attempt.current?.fingerprint !== fingerprint) {
      attempt.current = { fingerprint, requestId: newRequestId() };
    }
    const { requestId } = attempt.current;
    setPending(true);
    try {
      const { order } = await shop.orders.createOrder({
        userId: checked.order.userId,
        items: checked.order.items,
        requestId,
      });
      attempt.current = undefined;
      setLines([emptyLine()]);
      setOutcome({
        ok: true,
        text: `Placed order ${shortId(order?.id ?? "")} for ${formatMoney(order?.totalCents ?? 0n)}.`,
      });
    } catch (error) {
      setOutcome({
        ok: false,
        text:
          `Could not place the order: ${formatError(describeError(error))}. ` +
          `Submitting the same order again retries it safely (request ${shortId(requestId)}).`,
      });
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="card form" onSubmit={submit} noValidate aria-labelledby="place-order-title">
      <h2 id="place-order-title">Place an order</h2>
      <div className="field">
        <label htmlFor="order-user">Customer</label>
        <UserPicker
          id="order-user"
          searchFor="who places the order"
          value={userId}
          fixed={customer}
          onChange={setUserId}
          none="Choose a user…"
          invalid={problems.userId !== undefined}
          describedBy={problems.userId ? "order-user-problem" : undefined}
        />
        {problems.userId && (
          <p className="problem" id="order-user-problem">
            {problems.userId}
          </p>
        )}
      </div>
      <fieldset className="lines">
        <legend>Products</legend>
        {lines.map((line, index) => {
          const lineProblems = problems.line[index];
          const position = index + 1;
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: lines have no identity but their position
            <div className="line" key={index}>
              <div className="field">
                <label htmlFor={`order-sku-${index}`}>Product {position}</label>
                <select
                  id={`order-sku-${index}`}
                  value={line.sku}
                  onChange={(event) => setLine(index, { sku: event.target.value })}
                  aria-invalid={lineProblems?.sku ? true : undefined}
                  aria-describedby={lineProblems?.sku ? `order-sku-${index}-problem` : undefined}
                >
                  <option value="">Choose a product…</option>
                  {productOptions.map((product) => (
                    <option key={product.sku} value={product.sku} disabled={product.stock === 0n}>
                      {product.name} – {formatMoney(product.priceCents)} ({String(product.stock)}{" "}
                      left)
                    </option>
                  ))}
                </select>
                {lineProblems?.sku && (
                  <p className="problem" id={`order-sku-${index}-problem`}>
                    {lineProblems.sku}
                  </p>
                )}
              </div>
              <div className="field quantity">
                <label htmlFor={`order-quantity-${index}`}>Quantity {position}</label>
                <input
                  id={`order-quantity-${index}`}
                  inputMode="numeric"
                  value={line.quantity}
                  onChange={(event) => setLine(index, { quantity: event.target.value })}
                  aria-invalid={lineProblems?.quantity ? true : undefined}
                  aria-describedby={
                    lineProblems?.quantity ? `order-quantity-${index}-problem` : undefined
                  }
                />
                {lineProblems?.quantity && (
                  <p className="problem" id={`order-quantity-${index}-problem`}>
                    {lineProblems.quantity}
                  </p>
                )}
              </div>
              <button
                type="button"
                className="icon-button"
                aria-label={`Remove product ${position}`}
                onClick={() => {
                  setProblems({ line: {} });
                  setLines((current) => current.filter((_, i) => i !== index));
                }}
              >
                ×
              </button>
            </div>
          );
        })}
        {problems.lines && <p className="problem">{problems.lines}</p>}
        <button
          type="button"
          className="secondary"
          onClick={() => setLines((current) => [...current, emptyLine()])}
        >
          Add a product
        </button>
      </fieldset>
      <button type="submit" disabled={pending}>
        {pending ? "Placing…" : "Place order"}
      </button>
      <p
        className={outcome ? (outcome.ok ? "outcome ok" : "outcome error") : "outcome"}
        role="status"
        data-outcome="place-order"
      >
        {outcome?.text}
      </p>
    </form>
  );
}
