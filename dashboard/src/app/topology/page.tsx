import type { Metadata } from "next";
import { TopologyView } from "../../components/topology-view.tsx";

export const metadata: Metadata = { title: "Topology" };

export default function TopologyPage() {
  return <TopologyView />;
}
