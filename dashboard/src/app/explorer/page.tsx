import type { Metadata } from "next";
import { Suspense } from "react";
import { ExplorerView } from "../../components/explorer-view.tsx";

export const metadata: Metadata = { title: "Explorer" };

export default function ExplorerPage() {
  // The view reads the link's query (a shared call), which Next.js wants inside a Suspense boundary.
  return (
    <Suspense>
      <ExplorerView />
    </Suspense>
  );
}
