import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

/** How a service calls one upstream. */
export interface UpstreamOptions {
  /** Base URL of the upstream (`http://localhost:8081`). */
  baseUrl: string;
  /** Deadline of a call that sets none, in milliseconds. */
  defaultTimeoutMs?: number;
}

/** Creates a typed client of `service` speaking gRPC over HTTP/2 to one upstream. */
export function createUpstreamClient<T extends DescService>(
  service: T,
  options: UpstreamOptions,
): Client<T> {
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    defaultTimeoutMs: options.defaultTimeoutMs ?? 2_000,
  });
  return createClient(service, transport);
}
