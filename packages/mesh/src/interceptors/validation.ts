import type { DescMessage } from "@bufbuild/protobuf";
import { type Validator, violationsToProto } from "@bufbuild/protovalidate";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { toRuleViolation } from "../contract/contract-rules.ts";
import { describeViolations } from "../contract/rule-violation.ts";
import { observeStream } from "../protocol/streams.ts";

/**
 * Checks every request message against the rules of the contract before the handler sees it: the
 * message of a unary or server-streaming call before the handler runs, each message of a client or
 * bidi stream as it arrives. A message that breaks a rule fails the call with `invalid_argument`,
 * a message naming each field and what to change, and a `buf.validate.Violations` detail naming
 * each field path and rule, which any client of the contract can decode. serve() puts it in the
 * chain of every protocol and of both serving paths.
 */
export function createValidationInterceptor(validator: Validator): Interceptor {
  return (next) => (req) => {
    if (!req.stream) {
      const refusal = refusalOf(validator, req.method.input, req.message, undefined);
      return refusal === undefined ? next(req) : Promise.reject(refusal);
    }
    // A server-streaming call has one request message, whose position is no news to its client.
    const numbered = req.method.methodKind !== "server_streaming";
    let index = 0;
    const schema = req.method.input;
    return next({
      ...req,
      message: observeStream(req.message, {
        map(message) {
          const refusal = refusalOf(validator, schema, message, numbered ? index : undefined);
          index++;
          if (refusal !== undefined) throw refusal;
          return message;
        },
      }),
    });
  };
}

/** The error that refuses `message`, or undefined when it keeps every rule. */
function refusalOf(
  validator: Validator,
  schema: DescMessage,
  message: unknown,
  index: number | undefined,
): ConnectError | undefined {
  const result = validator.validate(schema, message as never);
  if (result.kind === "valid") return undefined;
  // A rule that cannot be evaluated is the contract's fault: the error interceptor makes it
  // `internal` and logs it.
  if (result.kind === "error") throw result.error;
  const described = describeViolations(result.violations.map(toRuleViolation));
  const [violations, schemaOfViolations] = violationsToProto(result.violations);
  return new ConnectError(
    index === undefined ? described : `message ${index} of the stream: ${described}`,
    Code.InvalidArgument,
    undefined,
    [{ desc: schemaOfViolations, value: violations }],
  );
}
