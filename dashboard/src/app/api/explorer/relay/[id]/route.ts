// POST /api/explorer/relay/{id}: a command for an open relay (lib/relay.ts): {"send": <message as
// JSON>}, {"close": true} (the half-close) or {"cancel": true}.

import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { commandRelay, type RelayCommand, refuse } from "../../../../../lib/relay.ts";
import { maxJsonBytes, readJson } from "../../../../../lib/request-body.ts";

export async function POST(
  request: Request,
  { params }: { params: Promise<{ id: string }> },
): Promise<Response> {
  const { id } = await params;
  const read = await readJson(request);
  if (read === "too large")
    return refuse(Code.ResourceExhausted, `send at most ${maxJsonBytes} bytes`);
  const body =
    read !== null && typeof read === "object" ? (read as Record<string, unknown>) : undefined;
  const command: RelayCommand | undefined =
    body && "send" in body
      ? { send: body.send as JsonValue }
      : body?.close === true
        ? { close: true }
        : body?.cancel === true
          ? { cancel: true }
          : undefined;
  if (!command) {
    return refuse(
      Code.InvalidArgument,
      'send {"send": message}, {"close": true} or {"cancel": true}',
    );
  }
  try {
    if (!commandRelay(id, command)) return refuse(Code.NotFound, `no open relay ${id}`);
    return new Response(null, { status: 204 });
  } catch (error) {
    const failure = ConnectError.from(error);
    // A message that does not decode is the page's mistake.
    const code = failure.code === Code.Unknown ? Code.InvalidArgument : failure.code;
    return refuse(code, failure.rawMessage);
  }
}
