import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** An error as the page shows it: the Connect code (snake case, as on the wire) and words. */
export interface ErrorDescription {
  code: string;
  message: string;
}

/**
 * Describes anything a call can throw. A fetch that never reached the server (connection refused,
 * network down) surfaces in browsers as a bare TypeError that Connect labels `unknown`; it is
 * reported as `unavailable`, which is what it means.
 */
export function describeError(error: unknown): ErrorDescription {
  const connectError = ConnectError.from(error);
  if (
    connectError.code === Code.Unknown &&
    (connectError.cause instanceof TypeError || error instanceof TypeError)
  ) {
    return { code: "unavailable", message: "the service could not be reached" };
  }
  return {
    code: codeToString(connectError.code),
    message: connectError.rawMessage || "no details were given",
  };
}

/** One line for an error: its words, then its code in brackets. */
export function formatError(error: ErrorDescription): string {
  return `${capitalise(error.message)} (${error.code})`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
