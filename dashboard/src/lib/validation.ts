// Checks made in the browser before a request is sent, so that obvious mistakes are explained at
// once; the services check everything again and have the last word.

/** Problems with a form, by field; empty when the form can be sent. */
export type Problems<Field extends string> = Partial<Record<Field, string>>;

const emailPattern = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

/** The fields of the create-user form. */
export interface NewUserInput {
  name: string;
  email: string;
}

/** Checks a new user the way CreateUser will: a name, and a well-formed email. */
export function validateNewUser(input: NewUserInput): Problems<keyof NewUserInput> {
  const problems: Problems<keyof NewUserInput> = {};
  if (input.name.trim() === "") problems.name = "Enter a name.";
  else if (input.name.trim().length > 200) problems.name = "Use at most 200 characters.";
  const email = input.email.trim();
  if (email === "") problems.email = "Enter an email address.";
  else if (!emailPattern.test(email))
    problems.email = "Enter an email address like ada@example.com.";
  return problems;
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

const maxQuantity = 10_000;

/**
 * Checks an order before it is placed: a user, at least one product, each product once, and whole
 * quantities from 1 to what `stockOf` says is available (when it knows).
 */
export function validateOrder(
  input: NewOrderInput,
  stockOf: (sku: string) => bigint | undefined,
): { order: ValidOrder } | { problems: OrderProblems } {
  const problems: OrderProblems = { line: {} };
  let failed = false;
  if (input.userId === "") {
    problems.userId = "Choose who places the order.";
    failed = true;
  }
  if (input.lines.length === 0) {
    problems.lines = "Add at least one product.";
    failed = true;
  }
  const seen = new Set<string>();
  const items: ValidOrder["items"] = [];
  input.lines.forEach((line, index) => {
    const lineProblems: { sku?: string; quantity?: string } = {};
    if (line.sku === "") lineProblems.sku = "Choose a product.";
    else if (seen.has(line.sku)) lineProblems.sku = "This product is already in the order.";
    seen.add(line.sku);
    const text = line.quantity.trim();
    if (!/^\d+$/.test(text) || Number(text) < 1) {
      lineProblems.quantity = "Enter a whole number of at least 1.";
    } else if (Number(text) > maxQuantity) {
      lineProblems.quantity = `Order at most ${maxQuantity.toLocaleString("en")} at a time.`;
    } else if (line.sku !== "") {
      const stock = stockOf(line.sku);
      if (stock !== undefined && BigInt(text) > stock) {
        lineProblems.quantity = stock === 0n ? "Sold out." : `Only ${stock} in stock.`;
      }
    }
    if (lineProblems.sku || lineProblems.quantity) {
      problems.line[index] = lineProblems;
      failed = true;
    } else {
      items.push({ sku: line.sku, quantity: BigInt(text) });
    }
  });
  return failed ? { problems } : { order: { userId: input.userId, items } };
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
