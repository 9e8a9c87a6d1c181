import type { Metadata } from "next";
import { TraceView } from "../../../components/traces-view.tsx";

export const metadata: Metadata = { title: "Trace" };

export default async function TracePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <TraceView traceId={id} />;
}
