import type { Metadata, Viewport } from "next";
import { connection } from "next/server";
import type { ReactNode } from "react";
import { AppHeader } from "../components/app-header.tsx";
import { SessionGate } from "../components/session-gate.tsx";
import { ShopProvider } from "../components/shop-provider.tsx";
import { readConfig } from "../config.ts";
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
 * Every page: the header, the session and the streams. The configuration is read from the
 * environment here, on the server, for each request (`connection()` keeps this from being rendered
 * at build time), and the browser gets the service URLs, which it talks to directly, and whether
 * to sign in. A page shows its content once someone is signed in (or sign-in is off).
 */
export default async function RootLayout({ children }: { children: ReactNode }) {
  await connection();
  const config = readConfig();
  return (
    <html lang="en">
      <body>
        <ShopProvider urls={config.urls} signIn={config.signIn !== undefined}>
          <AppHeader />
          <main>
            <SessionGate>{children}</SessionGate>
          </main>
        </ShopProvider>
      </body>
    </html>
  );
}
