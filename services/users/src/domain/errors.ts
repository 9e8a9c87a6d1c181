/** A field of a request is missing or malformed. */
export class InvalidUserError extends Error {
  override name = "InvalidUserError";
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** Another user already has this email. */
export class EmailTakenError extends Error {
  override name = "EmailTakenError";
  readonly email: string;
  constructor(email: string) {
    super(`a user with email ${email} already exists`);
    this.email = email;
  }
}

/** No user has this id. */
export class UserNotFoundError extends Error {
  override name = "UserNotFoundError";
  readonly id: string;
  constructor(id: string) {
    super(`user ${id} not found`);
    this.id = id;
  }
}

/** The update was based on a version that is no longer current. */
export class VersionMismatchError extends Error {
  override name = "VersionMismatchError";
  readonly expected: bigint;
  readonly current: bigint;
  constructor(id: string, expected: bigint, current: bigint) {
    super(`user ${id} is at version ${current}, not ${expected}: read it again and retry`);
    this.expected = expected;
    this.current = current;
  }
}

/** One message of a batch failed; nothing of the batch was stored. */
export class BatchItemError extends Error {
  override name = "BatchItemError";
  readonly index: number;
  override readonly cause: Error;
  constructor(index: number, cause: Error) {
    super(`message ${index} of the batch: ${cause.message}; no user of the batch was created`);
    this.index = index;
    this.cause = cause;
  }
}

/** A batch of more users than one call may create. */
export class BatchTooLargeError extends Error {
  override name = "BatchTooLargeError";
  constructor(limit: number) {
    super(`a batch may create at most ${limit} users`);
  }
}
