// Checks made in the browser before a request is sent, so that mistakes are explained at once. The
// rules are the contract's (buf.validate in proto/), run by @bufbuild/protovalidate here exactly as
// the services run them; what is left to this file is what the contract cannot know: what the
// form's controls hold, and the stock the page sees. The services check everything again and have
// the last word.
import { create } from "@bufbuild/protobuf";
import {
  CreateOrderRequestSchema,
  file_shop_order_v1_order_service,
} from "@shop/api/shop/order/v1/order_service_pb";
import {
  CreateUserRequestSchema,
  file_shop_user_v1_user_service,
  GetUserRequestSchema,
} from "@shop/api/shop/user/v1/user_service_pb";
import { createContractValidator, violationsOf } from "@shop/mesh/contract-rules";
import { describeViolations, type RuleViolation } from "@shop/mesh/rule-violation";

const validator = createContractValidator([
  file_shop_user_v1_user_service,
  file_shop_order_v1_order_service,
]);

/** Problems with a form, by field; empty when the form can be sent. */
export type Problems<Field extends string> = Partial<Record<Field, string>>;

/** The fields of the create-user form. */
export interface NewUserInput {
  name: string;
  email: string;
}

/**
 * Checks a new user by CreateUser's rules in the contract, trimmed as it will be sent: each field's
 * problem is the contract's message, after the field's name ("email must be an email address…").
 */
export function validateNewUser(input: NewUserInput): Problems<keyof NewUserInput> {
  const request = create(CreateUserRequestSchema, {
    name: input.name.trim(),
    email: input.email.trim(),
  });
  const problems: Problems<keyof NewUserInput> = {};
  for (const [field, violations] of byField(
    violationsOf(validator, CreateUserRequestSchema, request),
  )) {
    if (field === "name" || field === "email") problems[field] = describeViolations(violations);
  }
  return problems;
}

/** True when `text` is a user id by the contract's rule for one (GetUserRequest.id: a UUID). */
export function isUserId(text: string): boolean {
  const request = create(GetUserRequestSchema, { id: text });
  return violationsOf(validator, GetUserRequestSchema, request).length === 0;
}

/** One line of the order form, as typed. */
export interface OrderLineInput {
  sku: string;
  quantity: string;
}

/** The fields of the place-order form. */
export interface NewOrderInput {
  userId: string;
  lines: OrderLineInput[];
}

/** Problems with an order: for the user, the order as a whole, and each line by its index. */
export interface OrderProblems {
  userId?: string;
  lines?: string;
  line: Record<number, { sku?: string; quantity?: string }>;
}

/** An order that passed the checks, ready for CreateOrder. */
export interface ValidOrder {
  userId: string;
  items: { sku: string; quantity: bigint }[];
}

/**
 * Checks an order before it is placed: by CreateOrder's rules in the contract (a user id, 1 to 100
 * items, each sku once, quantities from 1 to 10,000), after reading the quantities typed as whole
 * numbers; then no more of a product than `stockOf` says is available (when it knows). A control
 * left on its empty choice asks for a choice rather than quoting the rule.
 */
export function validateOrder(
  input: NewOrderInput,
  stockOf: (sku: string) => bigint | undefined,
): { order: ValidOrder } | { problems: OrderProblems } {
  const problems: OrderProblems = { line: {} };
  const lineProblem = (index: number, problem: { sku?: string; quantity?: string }) => {
    problems.line[index] = { ...problems.line[index], ...problem };
  };
  const items = input.lines.map((line, index) => {
    const text = line.quantity.trim();
    if (!/^\d+$/.test(text)) lineProblem(index, { quantity: "Enter a whole number." });
    return { sku: line.sku, quantity: /^\d+$/.test(text) ? BigInt(text) : 1n };
  });
  const request = create(CreateOrderRequestSchema, { userId: input.userId, items });
  for (const violation of violationsOf(validator, CreateOrderRequestSchema, request)) {
    const [field, index, itemField] = violation.path;
    const text = describeViolations([violation]);
    if (field === "user_id") {
      problems.userId ??= input.userId === "" ? "Choose who places the order." : text;
    } else if (field === "items" && typeof index === "number") {
      const sku = input.lines[index]?.sku === "" ? "Choose a product." : text;
      lineProblem(index, itemField === "sku" ? { sku } : { quantity: text });
    } else {
      problems.lines ??= text;
    }
  }
  input.lines.forEach((line, index) => {
    const quantity = items[index]?.quantity ?? 0n;
    const stock = line.sku === "" ? undefined : stockOf(line.sku);
    if (problems.line[index] === undefined && stock !== undefined && quantity > stock) {
      lineProblem(index, { quantity: stock === 0n ? "Sold out." : `Only ${stock} in stock.` });
    }
  });
  const failed =
    problems.userId !== undefined ||
    problems.lines !== undefined ||
    Object.keys(problems.line).length > 0;
  return failed ? { problems } : { order: { userId: input.userId, items } };
}

/** The violations grouped by the top-level field they are about, in order. */
function byField(violations: readonly RuleViolation[]): Map<string, RuleViolation[]> {
  const grouped = new Map<string, RuleViolation[]>();
  for (const violation of violations) {
    const field = String(violation.path[0] ?? "");
    grouped.set(field, [...(grouped.get(field) ?? []), violation]);
  }
  return grouped;
}

/** True when a problems object has nothing to report. */
export function isEmpty(problems: object): boolean {
  return Object.values(problems).every((value) => value === undefined);
}

/**
 * A new random UUID (version 4) for CreateOrder's request_id. `crypto.randomUUID` exists only in
 * secure contexts, and the dashboard may be served over plain HTTP on a LAN address.
 */
export function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
