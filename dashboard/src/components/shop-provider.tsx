"use client";

import {
  createContext,
  type ReactNode,
  use,
  useEffect,
  useState,
  useSyncExternalStore,
} from "react";
import type { CollectionView, LiveCollection } from "../lib/live-collection.ts";
import type { LiveValue, ValueView } from "../lib/live-value.ts";
import type { ServiceUrls } from "../lib/service-urls.ts";
import { createShop, type Shop } from "../lib/shop.ts";

const ShopContext = createContext<Shop | null>(null);

/** Opens the shop's streams for as long as the dashboard is open, and hands them to the pages. */
export function ShopProvider({ urls, children }: { urls: ServiceUrls; children: ReactNode }) {
  const [shop] = useState(() => createShop(urls));
  useEffect(() => {
    shop.start();
    return () => shop.stop();
  }, [shop]);
  return <ShopContext value={shop}>{children}</ShopContext>;
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
