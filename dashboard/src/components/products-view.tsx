"use client";

import type { Product } from "@shop/api/shop/inventory/v1/inventory_pb";
import { useMemo } from "react";
import { formatMoney } from "../lib/format.ts";
import { ActivityFeed } from "./activity-feed.tsx";
import { useCollection, useShop } from "./shop-provider.tsx";
import { StreamBadge, StreamNotice } from "./stream-status.tsx";

const lowStock = 10n;

/** The products page: the catalog with its stock, live from WatchStock. */
export function ProductsView() {
  const shop = useShop();
  const products = useCollection(shop.productList);
  const rows = useMemo(
    () => [...products.items.values()].sort((a, b) => a.sku.localeCompare(b.sku)),
    [products.items],
  );
  return (
    <div className="page">
      <div className="page-title">
        <h1>Products</h1>
        <StreamBadge name="stock" state={products} />
      </div>
      <div className="layout-side reverse">
        <section className="card" aria-labelledby="products-table-title">
          <div className="card-title">
            <h2 id="products-table-title">Catalog and stock</h2>
            <span className="muted">
              {products.loaded ? `${products.items.size} products` : ""}
            </span>
          </div>
          <StreamNotice
            service="inventory"
            url={shop.urls.inventory}
            state={products}
            hasData={products.loaded}
            onRetry={shop.productList.retryNow}
          />
          {!products.loaded ? (
            <p className="empty">Loading products…</p>
          ) : rows.length === 0 ? (
            <p className="empty">The catalog is empty.</p>
          ) : (
            <div className="table-scroll">
              <table>
                <caption className="visually-hidden">Products by SKU</caption>
                <thead>
                  <tr>
                    <th scope="col">Product</th>
                    <th scope="col" className="optional">
                      SKU
                    </th>
                    <th scope="col" className="number">
                      Price
                    </th>
                    <th scope="col" className="number">
                      In stock
                    </th>
                    <th scope="col" className="number">
                      Reserved
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((product) => (
                    <ProductRow
                      key={product.sku}
                      product={product}
                      fresh={products.highlighted.has(product.sku)}
                    />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <ActivityFeed
          title="Recent stock changes"
          entries={products.activity}
          describe={(entry) =>
            `${entry.item.name}: ${entry.item.stock} in stock, ${entry.item.reserved} reserved`
          }
        />
      </div>
    </div>
  );
}

function ProductRow({ product, fresh }: { product: Product; fresh: boolean }) {
  return (
    <tr
      data-id={product.sku}
      data-highlighted={fresh || undefined}
      className={fresh ? "fresh" : undefined}
    >
      <td>{product.name}</td>
      <td className="optional">
        <code>{product.sku}</code>
      </td>
      <td className="number">{formatMoney(product.priceCents)}</td>
      <td className="number stock">
        <span
          className={
            product.stock === 0n
              ? "tag tag-error"
              : product.stock <= lowStock
                ? "tag tag-warn"
                : undefined
          }
          title={
            product.stock === 0n ? "sold out" : product.stock <= lowStock ? "low stock" : undefined
          }
        >
          {String(product.stock)}
        </span>
      </td>
      <td className="number reserved">{String(product.reserved)}</td>
    </tr>
  );
}
