// GET /api/traces/{trace id} (admins): the spans of one trace, earliest first.
import { readConfig } from "../../../../config.ts";
import { refuseUnlessAdmin } from "../../../../lib/admin-only.ts";
import { traceStore } from "../../../../lib/trace-store.ts";

export async function GET(
  request: Request,
  { params }: { params: Promise<{ id: string }> },
): Promise<Response> {
  const refused = await refuseUnlessAdmin(request, readConfig().signIn);
  if (refused) return refused;
  const { id } = await params;
  const spans = traceStore().get(id.toLowerCase());
  if (!spans) {
    return Response.json(
      { error: `no trace ${id} is kept (the receiver keeps the most recent)` },
      { status: 404, headers: { "cache-control": "no-store" } },
    );
  }
  return Response.json({ spans }, { headers: { "cache-control": "no-store" } });
}
