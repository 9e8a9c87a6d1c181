import type { Metadata, Viewport } from "next";
import { connection } from "next/server";
import type { ReactNode } from "react";
import { AppHeader } from "../components/app-header.tsx";
import { ShopProvider } from "../components/shop-provider.tsx";
import { readServiceUrls } from "../config.ts";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Shop mesh", template: "%s · Shop mesh" },
  description: "Live users, orders, stock and mesh health of the shop.",
};

export const viewport: Viewport = {
  width: "device-width",
  initialScale: 1,
  themeColor: "#0f172a",
};

/**
 * Every page: the header and the streams. The service URLs are read from the environment here, on
 * the server, for each request (`connection()` keeps this from being rendered at build time), and
 * handed to the browser, which talks to the services directly.
 */
export default async function RootLayout({ children }: { children: ReactNode }) {
  await connection();
  const urls = readServiceUrls();
  return (
    <html lang="en">
      <body>
        <ShopProvider urls={urls}>
          <AppHeader />
          <main>{children}</main>
        </ShopProvider>
      </body>
    </html>
  );
}
