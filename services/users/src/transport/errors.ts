import { Code } from "@connectrpc/connect";
import { createDomainErrorMapper } from "@shop/mesh";
import {
  BatchItemError,
  BatchTooLargeError,
  EmailTakenError,
  InvalidUserError,
  UserNotFoundError,
  VersionMismatchError,
} from "../domain/errors.ts";

function codeOf(error: unknown): Code | undefined {
  // A batch fails with the code of the message that failed it.
  if (error instanceof BatchItemError) return codeOf(error.cause);
  if (error instanceof InvalidUserError) return Code.InvalidArgument;
  if (error instanceof EmailTakenError) return Code.AlreadyExists;
  if (error instanceof UserNotFoundError) return Code.NotFound;
  if (error instanceof VersionMismatchError) return Code.Aborted;
  if (error instanceof BatchTooLargeError) return Code.ResourceExhausted;
  return undefined;
}

/** Maps the users domain's errors to Connect codes; anything else passes unchanged. */
export const toConnectError = createDomainErrorMapper(codeOf);
