// POST /api/explorer/relay: opens a relay for a client- or bidi-streaming call of the explorer
// (lib/relay.ts). The body names the service URL (one the dashboard knows: no other address is
// called), the method, extra headers and a deadline; the answer streams the call's events as lines
// of JSON, the relay's id first. The caller's authorization header goes with the call.
import { Code, ConnectError } from "@connectrpc/connect";
import { z } from "zod";
import { readConfig } from "../../../../config.ts";
import { openRelay, refuse } from "../../../../lib/relay.ts";
import { maxJsonBytes, readJson } from "../../../../lib/request-body.ts";
import { serviceNames } from "../../../../lib/service-urls.ts";

const openSchema = z.object({
  url: z.string(),
  method: z.string().regex(/^[\w.]+\/\w+$/, "a method is named package.Service/Method"),
  headers: z.record(z.string(), z.string()).default({}),
  timeoutMs: z.number().int().positive().optional(),
});

export async function POST(request: Request): Promise<Response> {
  const body = await readJson(request);
  if (body === "too large")
    return refuse(Code.ResourceExhausted, `send at most ${maxJsonBytes} bytes`);
  const parsed = openSchema.safeParse(body);
  if (!parsed.success) {
    return refuse(
      Code.InvalidArgument,
      parsed.error.issues.map((issue) => issue.message).join("; "),
    );
  }
  const config = readConfig();
  const known = [...serviceNames.map((name) => config.urls[name]), ...config.explorerUrls];
  if (!known.includes(parsed.data.url)) {
    return refuse(Code.InvalidArgument, `${parsed.data.url} is not a service the dashboard knows`);
  }
  try {
    const events = await openRelay({
      url: parsed.data.url,
      methodName: parsed.data.method,
      authorization: request.headers.get("authorization") ?? undefined,
      headers: parsed.data.headers,
      timeoutMs: parsed.data.timeoutMs,
      signal: request.signal,
    });
    return new Response(events, {
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" },
    });
  } catch (error) {
    const failure = ConnectError.from(error);
    return refuse(failure.code, failure.rawMessage);
  }
}
