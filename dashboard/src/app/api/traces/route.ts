// GET /api/traces (admins): the traces the dashboard's OTLP receiver keeps, newest first.
import { readConfig } from "../../../config.ts";
import { refuseUnlessAdmin } from "../../../lib/admin-only.ts";
import { traceStore } from "../../../lib/trace-store.ts";

export async function GET(request: Request): Promise<Response> {
  const refused = await refuseUnlessAdmin(request, readConfig().signIn);
  if (refused) return refused;
  return Response.json(
    { traces: traceStore().list() },
    { headers: { "cache-control": "no-store" } },
  );
}
