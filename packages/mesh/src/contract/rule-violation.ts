// What a broken rule of the contract looks like to code that must not depend on protobuf: the
// services' domains receive their checks through a port of this shape (see contract-rules.ts for
// the implementation over @bufbuild/protovalidate), and this module imports nothing.

/** One rule of the contract that a value breaks: where, which rule, and what to change. */
export interface RuleViolation {
  /** The field's path as the contract names it, such as `items[1].quantity`; empty for a message rule. */
  readonly field: string;
  /** The same path as field names and list indexes, for code that acts on it. */
  readonly path: readonly (string | number)[];
  /** The id of the broken rule, such as `string.uuid`. */
  readonly rule: string;
  /** What to change, in the contract's words, such as "must be a valid UUID". */
  readonly message: string;
}

/** Checks a value against the contract's rules for it: the rules it breaks, none when it keeps all. */
export type RuleCheck<T> = (value: T) => readonly RuleViolation[];

/**
 * The violations as one text a person can act on, each field named before what to change:
 * "name must not be empty; email must be an email address like ada@example.com".
 */
export function describeViolations(violations: readonly RuleViolation[]): string {
  return violations
    .map((violation) =>
      violation.field === "" ? violation.message : `${violation.field} ${violation.message}`,
    )
    .join("; ");
}

/**
 * The violations with those of fields first (a message rule, such as "change at least one field",
 * is the less precise answer when a field is wrong as well), each group in its original order.
 */
export function fieldsFirst(violations: readonly RuleViolation[]): RuleViolation[] {
  return [
    ...violations.filter((violation) => violation.path.length > 0),
    ...violations.filter((violation) => violation.path.length === 0),
  ];
}
