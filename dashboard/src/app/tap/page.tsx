import type { Metadata } from "next";
import { TapView } from "../../components/tap-view.tsx";

export const metadata: Metadata = { title: "Tap" };

export default function TapPage() {
  return <TapView />;
}
