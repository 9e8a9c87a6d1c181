import type { Metadata } from "next";
import { Suspense } from "react";
import { TapView } from "../../components/tap-view.tsx";

export const metadata: Metadata = { title: "Tap" };

export default function TapPage() {
  // The view reads the link's query (the service the topology chose), which Next.js wants inside
  // a Suspense boundary.
  return (
    <Suspense>
      <TapView />
    </Suspense>
  );
}
