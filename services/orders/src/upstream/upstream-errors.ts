import { Code, ConnectError } from "@connectrpc/connect";
import { UpstreamUnavailableError } from "../domain/errors.ts";

/**
 * Turns a failed call to `upstream` into the domain's UpstreamUnavailableError when the upstream
 * is down or slow; returns undefined for errors the caller must interpret itself.
 */
export function upstreamFailure(
  upstream: string,
  error: unknown,
): UpstreamUnavailableError | undefined {
  const connectError = ConnectError.from(error);
  switch (connectError.code) {
    case Code.DeadlineExceeded:
      return new UpstreamUnavailableError(`the ${upstream} service did not answer in time`, {
        timedOut: true,
        cause: error,
      });
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
    case Code.ResourceExhausted:
    case Code.Unimplemented:
    case Code.Canceled:
      return new UpstreamUnavailableError(`the ${upstream} service is unavailable; retry later`, {
        timedOut: false,
        cause: error,
      });
    default:
      return undefined;
  }
}
