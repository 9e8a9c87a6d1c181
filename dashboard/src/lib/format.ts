import type { Timestamp } from "@bufbuild/protobuf/wkt";

const currency = new Intl.NumberFormat("en-GB", { style: "currency", currency: "EUR" });

/** An amount in cents as money, such as "€13.80". */
export function formatMoney(cents: bigint): string {
  return currency.format(Number(cents) / 100);
}

/** A timestamp as a local date and time, short. */
export function formatTime(timestamp: Timestamp | undefined): string {
  if (!timestamp) return "–";
  const date = new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6));
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString("en-GB")
    : date.toLocaleString("en-GB", { dateStyle: "short", timeStyle: "short" });
}

/** Milliseconds since the epoch of a timestamp, for sorting. */
export function timestampMs(timestamp: Timestamp | undefined): number {
  return timestamp ? Number(timestamp.seconds) * 1000 + timestamp.nanos / 1e6 : 0;
}

/** The first block of a UUID: enough to tell orders apart on screen. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** A rate or a duration with sensible precision: "0", "0.40", "3.5", "12.5", "340". */
export function formatNumber(value: number): string {
  if (value === 0) return "0";
  if (value < 10) return value.toFixed(value < 1 ? 2 : 1);
  if (value < 100) return value.toFixed(1);
  return Math.round(value).toLocaleString("en");
}
