// POST /v1/traces: the dashboard's OTLP/HTTP trace receiver, where `npm start` points the services'
// exporters (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), so that traces show without Jaeger or Docker.
// Takes protobuf and JSON exports; keeps the most recent traces in memory (lib/trace-store.ts).
import { decodeExport, MalformedExportError } from "../../../lib/otlp.ts";
import { readBytes } from "../../../lib/request-body.ts";
import { traceStore } from "../../../lib/trace-store.ts";

/** An export larger than this is refused (the SDK's batches are far smaller). */
const maxExportBytes = 16 * 1024 * 1024;

export async function POST(request: Request): Promise<Response> {
  const contentType = request.headers.get("content-type") ?? "";
  const body = await readBytes(request, maxExportBytes);
  if (body === "too large") return refuse(413, `send at most ${maxExportBytes} bytes`);
  try {
    traceStore().add(decodeExport(body ?? new Uint8Array(), contentType));
  } catch (error) {
    if (error instanceof MalformedExportError) return refuse(400, error.message);
    throw error;
  }
  // An ExportTraceServiceResponse with nothing rejected: empty, in either encoding.
  return contentType.startsWith("application/json")
    ? Response.json({})
    : new Response(new Uint8Array(), { headers: { "content-type": "application/x-protobuf" } });
}

function refuse(status: number, message: string): Response {
  return Response.json({ code: 3, message }, { status });
}
