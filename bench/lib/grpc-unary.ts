// A unary gRPC call written straight to a node:http2 session, its request bytes made by the
// caller: the lean client of the bench's probes and closed loops, which should add as little of
// their own to what they measure as they can (see bench/scenarios/other-calls.ts).
import * as http2 from "node:http2";

/**
 * Calls `path` with `frame` (a gRPC length-prefixed message) on `session`: undefined when it
 * answered grpc-status 0, else why it failed. A call not ended after `deadlineMs` is cancelled
 * (the server is told too, by grpc-timeout). The response message is read and dropped.
 */
export function grpcUnary(
  session: http2.ClientHttp2Session,
  path: string,
  frame: Buffer,
  deadlineMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": `${deadlineMs}m`,
    });
    let status: string | undefined;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const read = (headers: http2.IncomingHttpHeaders) => {
      if (headers["grpc-status"] !== undefined) grpcStatus = String(headers["grpc-status"]);
      if (headers["grpc-message"] !== undefined) grpcMessage = String(headers["grpc-message"]);
    };
    stream.on("response", (headers) => {
      status = String(headers[":status"]);
      read(headers);
    });
    stream.on("trailers", read);
    stream.on("data", () => {});
    stream.on("error", () => {});
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), deadlineMs);
    stream.on("close", () => {
      clearTimeout(timer);
      if (status === "200" && grpcStatus === "0") resolve(undefined);
      else if (grpcStatus !== undefined) resolve(`grpc-status ${grpcStatus}: ${grpcMessage}`);
      else resolve(`no answer within ${deadlineMs} ms (HTTP status ${status ?? "none"})`);
    });
    stream.end(frame);
  });
}
