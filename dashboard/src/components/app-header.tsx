"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { shortId } from "../lib/format.ts";
import { useCollection, useSession, useShop, useUser } from "./shop-provider.tsx";
import { StreamBadge } from "./stream-status.tsx";

const pages = [
  { href: "/", label: "Overview" },
  { href: "/users", label: "Users" },
  { href: "/orders", label: "Orders" },
  { href: "/products", label: "Products" },
  { href: "/explorer", label: "Explorer" },
  { href: "/topology", label: "Topology" },
  { href: "/tap", label: "Tap" },
  { href: "/traces", label: "Traces" },
] as const;

/** The title bar: navigation, the state of the three data streams, and who is signed in. */
export function AppHeader() {
  const pathname = usePathname();
  const shop = useShop();
  const { view } = useSession();
  const users = useCollection(shop.userList);
  const orders = useCollection(shop.orderList);
  const products = useCollection(shop.productList);
  const streaming = view.status === "off" || view.status === "signed-in";
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
      {streaming && (
        <section className="header-streams" aria-label="Live streams">
          <StreamBadge name="users" state={users} showName />
          <StreamBadge name="orders" state={orders} showName />
          <StreamBadge name="stock" state={products} showName />
        </section>
      )}
      <SessionMenu />
    </header>
  );
}

/** Who the page acts as, with sign-out and a way back from a customer's view to the admin's. */
function SessionMenu() {
  const { session, view } = useSession();
  const customer = useUser(
    view.status === "signed-in" && view.identity.role === "customer"
      ? view.identity.userId
      : undefined,
  );
  if (view.status === "off" || view.status === "restoring") return null;
  if (view.status !== "signed-in") {
    return (
      <section className="session" aria-label="Session" data-session="signed-out">
        <span>Not signed in</span>
      </section>
    );
  }
  const { identity } = view;
  return (
    <section className="session" aria-label="Session" data-session={identity.role}>
      {identity.role === "admin" ? (
        <span>
          Signed in as <strong>admin</strong>
        </span>
      ) : (
        <>
          <span>
            Viewing as{" "}
            <strong title={identity.userId}>{customer?.name ?? shortId(identity.userId)}</strong>{" "}
            (customer)
          </span>
          <button
            type="button"
            className="header-button"
            onClick={() => session.signIn({ role: "admin" })}
          >
            Back to admin
          </button>
        </>
      )}
      <button type="button" className="header-button" onClick={() => session.signOut()}>
        Sign out
      </button>
    </section>
  );
}
