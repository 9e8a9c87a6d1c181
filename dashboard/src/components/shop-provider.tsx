"use client";

import type { User } from "@shop/api/shop/user/v1/user_pb";
import {
  createContext,
  type ReactNode,
  use,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
} from "react";
import type { CollectionView, LiveCollection } from "../lib/live-collection.ts";
import { createLivePage, type LivePage, type PageSource, type PageView } from "../lib/live-page.ts";
import type { LiveValue, ValueView } from "../lib/live-value.ts";
import type { ServiceUrls } from "../lib/service-urls.ts";
import { createSessionStore, type SessionStore, type SessionView } from "../lib/session.ts";
import { createShop, type Shop } from "../lib/shop.ts";

const ShopContext = createContext<Shop | null>(null);
const SessionContext = createContext<SessionStore | null>(null);

/**
 * Keeps the session, and opens the shop's streams for as long as the dashboard is open and someone
 * is signed in (or sign-in is off), handing both to the pages. Each identity gets its own shop, so
 * nothing one caller saw is shown to the next.
 */
export function ShopProvider({
  urls,
  signIn,
  children,
}: {
  urls: ServiceUrls;
  /** Whether the dashboard's server signs people in (it has a signing key). */
  signIn: boolean;
  children: ReactNode;
}) {
  const [session] = useState(() => createSessionStore({ enabled: signIn }));
  const view = useSyncExternalStore(
    session.subscribe,
    session.getSnapshot,
    session.getServerSnapshot,
  );
  useEffect(() => {
    session.start();
    return () => session.stop();
  }, [session]);
  const identity = view.status === "signed-in" ? view.identity : undefined;
  const active = view.status === "off" || view.status === "signed-in";
  const shop = useMemo(() => createShop(urls, session, identity), [urls, session, identity]);
  useEffect(() => {
    if (!active) return;
    shop.start();
    return () => shop.stop();
  }, [shop, active]);
  return (
    <SessionContext value={session}>
      <ShopContext value={shop}>{children}</ShopContext>
    </SessionContext>
  );
}

/** The session of the enclosing ShopProvider, and its current state; re-renders on every change. */
export function useSession(): { session: SessionStore; view: SessionView } {
  const session = use(SessionContext);
  if (!session) throw new Error("useSession needs a ShopProvider above it");
  const view = useSyncExternalStore(
    session.subscribe,
    session.getSnapshot,
    session.getServerSnapshot,
  );
  return { session, view };
}

/** Whether the page acts as the admin (or as anyone, when sign-in is off). */
export function useIsAdmin(): boolean {
  const { view } = useSession();
  const shop = useShop();
  return view.status === "off" || shop.identity?.role === "admin";
}

/** The shop of the enclosing ShopProvider. */
export function useShop(): Shop {
  const shop = use(ShopContext);
  if (!shop) throw new Error("useShop needs a ShopProvider above it");
  return shop;
}

/** The current view of a live collection; re-renders on every change. */
export function useCollection<Item>(collection: LiveCollection<Item>): CollectionView<Item> {
  return useSyncExternalStore(collection.subscribe, collection.getSnapshot, collection.getSnapshot);
}

/** The current view of a live value; re-renders on every change. */
export function useLiveValue<T>(value: LiveValue<T>): ValueView<T> {
  return useSyncExternalStore(value.subscribe, value.getSnapshot, value.getSnapshot);
}

/** Keeps `values` streaming while the calling component is on screen. */
export function useStarted(values: readonly LiveValue<unknown>[]): void {
  useEffect(() => {
    for (const value of values) value.start();
    return () => {
      for (const value of values) value.stop();
    };
  }, [values]);
}

/** The current time, updated every `intervalMs` while `active`. */
export function useNow(active: boolean, intervalMs = 1_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [active, intervalMs]);
  return now;
}

/**
 * One page of `source`, listed on the server and kept live by `changes` while the calling
 * component is on screen (live-page.ts); `initial` is the filter it starts with.
 */
export function useLivePage<Item, Filter>(
  source: PageSource<Item, Filter>,
  changes: LiveCollection<Item>,
  initial: Filter,
  pageSize?: number,
): { page: LivePage<Item, Filter>; view: PageView<Item, Filter> } {
  // A new page for new sources (another identity's shop); the filter is the page's own state.
  // biome-ignore lint/correctness/useExhaustiveDependencies: initial is only where it starts
  const page = useMemo(
    () => createLivePage(source, changes, initial, { pageSize }),
    [source, changes, pageSize],
  );
  useEffect(() => {
    page.start();
    return () => page.stop();
  }, [page]);
  const view = useSyncExternalStore(page.subscribe, page.getSnapshot, page.getSnapshot);
  return { page, view };
}

/** The user with this id, fetched once and kept up to date; null when there is none. */
export function useUser(id: string | undefined): User | null | undefined {
  const { userNames } = useShop();
  useSyncExternalStore(userNames.subscribe, userNames.getSnapshot, userNames.getSnapshot);
  return id === undefined ? undefined : userNames.get(id);
}

/** How long typing pauses before a search goes to the service. */
const searchDelayMs = 250;

/**
 * The text of a search box over `page`, and its setter: the page shows the first page of what
 * matches once typing pauses for a moment.
 */
export function usePageSearch<Item, Filter extends { query: string }>(
  page: LivePage<Item, Filter>,
): [string, (query: string) => void] {
  const [query, setQuery] = useState("");
  useEffect(() => {
    const filter = page.getSnapshot().filter;
    if (query === filter.query) return;
    const timer = setTimeout(() => page.show({ ...filter, query }), searchDelayMs);
    return () => clearTimeout(timer);
  }, [query, page]);
  return [query, setQuery];
}
