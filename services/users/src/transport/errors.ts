import { Code, ConnectError } from "@connectrpc/connect";
import { InvalidStartRevisionError } from "@shop/mesh/watch";
import {
  BatchItemError,
  BatchTooLargeError,
  EmailTakenError,
  InvalidUserError,
  type UserDomainError,
  UserNotFoundError,
  VersionMismatchError,
} from "../domain/errors.ts";

/**
 * Maps the domain's errors to Connect codes; anything else is rethrown unchanged for the mesh's
 * error interceptor, which turns it into a generic `internal`.
 */
export function toConnectError(error: unknown): unknown {
  if (error instanceof InvalidStartRevisionError) {
    return new ConnectError(error.message, Code.InvalidArgument);
  }
  if (!isDomainError(error)) return error;
  return new ConnectError(error.message, codeOf(error), undefined, undefined, error);
}

function codeOf(error: UserDomainError): Code {
  if (error instanceof BatchItemError) return codeOf(error.cause as UserDomainError);
  if (error instanceof InvalidUserError) return Code.InvalidArgument;
  if (error instanceof EmailTakenError) return Code.AlreadyExists;
  if (error instanceof UserNotFoundError) return Code.NotFound;
  if (error instanceof VersionMismatchError) return Code.Aborted;
  if (error instanceof BatchTooLargeError) return Code.ResourceExhausted;
  const unhandled: never = error;
  throw new Error(`unmapped domain error ${String(unhandled)}`);
}

function isDomainError(error: unknown): error is UserDomainError {
  return (
    error instanceof InvalidUserError ||
    error instanceof EmailTakenError ||
    error instanceof UserNotFoundError ||
    error instanceof VersionMismatchError ||
    error instanceof BatchItemError ||
    error instanceof BatchTooLargeError
  );
}
