"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { useCollection, useShop } from "./shop-provider.tsx";
import { StreamBadge } from "./stream-status.tsx";

const pages = [
  { href: "/", label: "Overview" },
  { href: "/users", label: "Users" },
  { href: "/orders", label: "Orders" },
  { href: "/products", label: "Products" },
] as const;

/** The title bar: navigation between the pages and the state of the three data streams. */
export function AppHeader() {
  const pathname = usePathname();
  const shop = useShop();
  const users = useCollection(shop.userList);
  const orders = useCollection(shop.orderList);
  const products = useCollection(shop.productList);
  return (
    <header className="app-header">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">
          ◆
        </span>{" "}
        Shop mesh
      </div>
      <nav aria-label="Pages">
        <ul>
          {pages.map((page) => (
            <li key={page.href}>
              <Link href={page.href} aria-current={pathname === page.href ? "page" : undefined}>
                {page.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <section className="header-streams" aria-label="Live streams">
        <StreamBadge name="users" state={users} showName />
        <StreamBadge name="orders" state={orders} showName />
        <StreamBadge name="stock" state={products} showName />
      </section>
    </header>
  );
}
