// The contract's field and message rules (buf.validate in proto/), checked by @bufbuild/protovalidate.
// The runtime's validation step, the services' domain ports and the dashboard's forms all check
// through here, so that every rule is written once, in the contract. This module imports only
// protobuf-es and protovalidate, which also run in the browser.
import {
  create,
  createRegistry,
  type DescFile,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { Path } from "@bufbuild/protobuf/reflect";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator, type Violation } from "@bufbuild/protovalidate";
import type { RuleCheck, RuleViolation } from "./rule-violation.ts";

/**
 * A validator for the messages of `files` that knows the predefined rules (such as
 * `shop.rules.v1.sku`) declared in them or in the files they import: protovalidate applies a
 * predefined rule only when its extension is in the validator's registry.
 */
export function createContractValidator(files: Iterable<DescFile>): Validator {
  return createValidator({ registry: createRegistry(...withImports(files)) });
}

/** `files` and every file they import, directly or not, each once. */
function withImports(files: Iterable<DescFile>): DescFile[] {
  const found = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (found.has(file.name)) return;
    found.set(file.name, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const file of files) visit(file);
  return [...found.values()];
}

/**
 * The rules `message` breaks, in the contract's words; none when it keeps them all. A rule that
 * cannot be evaluated is a fault of the contract, not of the message: it is thrown.
 */
export function violationsOf<Desc extends DescMessage>(
  validator: Validator,
  schema: Desc,
  message: MessageShape<Desc>,
): RuleViolation[] {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return [];
  if (result.kind === "error") throw result.error;
  return result.violations.map(toRuleViolation);
}

/**
 * A check of a value of the domain against the rules of the contract's message `schema`, which
 * `toMessage` makes of it: how a service gives its domain the contract's rules without protobuf.
 */
export function contractCheck<T, Desc extends DescMessage>(
  validator: Validator,
  schema: Desc,
  toMessage: (value: T) => MessageInitShape<Desc>,
): RuleCheck<T> {
  return (value) => violationsOf(validator, schema, create(schema, toMessage(value)));
}

/** A protovalidate violation as the runtime, the domains and the dashboard report it. */
export function toRuleViolation(violation: Violation): RuleViolation {
  return {
    field: pathToString(violation.field),
    path: pathElements(violation.field),
    rule: violation.ruleId,
    message: violation.message,
  };
}

function pathElements(path: Path): (string | number)[] {
  return path.map((element) => {
    if (element.kind === "field" || element.kind === "oneof") return element.name;
    if (element.kind === "extension") return element.typeName;
    if (element.kind === "list_sub") return element.index;
    return typeof element.key === "number" ? element.key : String(element.key);
  });
}
