// Property-based: random bytes, random JSON and random (valid but odd) messages sent to every RPC
// of the three services, over Connect JSON, Connect binary and gRPC, never crash a service and are
// never answered `internal` (or left unanswered): what is merely invalid is the client's mistake.
// Streaming RPCs get the payload as their first message and are cancelled after the first answer.
// 130 runs per service by default (FUZZ_RUNS to change), each service capped at 17 s.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  create,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  ScalarType,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import fc from "fast-check";
import {
  envelope,
  internalDetail,
  outcomeOf,
  type RpcOutcome,
  send,
  sendFirst,
} from "./support/raw-rpc.ts";
import { isAlive, type Shop, startShop, startTimeOf } from "./support/shop.ts";

let shop: Shop;
before(async () => {
  shop = await startShop();
});
after(async () => {
  await shop?.stop();
});

type Protocol = "connect-json" | "connect-proto" | "grpc";

/** Strings that have found bugs elsewhere: NUL, lone surrogates, SQL, huge, look-alike ids. */
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "' OR 1=1 --",
    "%_\\",
    "00000000-0000-0000-0000-000000000000",
    "MUG-CERAMIC",
    "a@b.c",
    "x".repeat(10_000),
  ),
  fc.uuid(),
);

const int32 = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31)),
);
const int64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom(0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 31n),
);
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

function scalarArbitrary(scalar: ScalarType): fc.Arbitrary<unknown> {
  switch (scalar) {
    case ScalarType.STRING:
      return oddString;
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 40 });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return int64;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return uint64;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    default:
      return int32;
  }
}

function valueArbitrary(field: DescField, depth: number): fc.Arbitrary<unknown> | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return scalarArbitrary(field.scalar);
    case "enum":
      return fc.oneof(fc.constantFrom(...field.enum.values.map((v) => v.number)), int32);
    case "message":
      return depth > 2 ? undefined : messageInit(field.message, depth + 1);
    case "list": {
      const element =
        field.listKind === "scalar"
          ? scalarArbitrary(field.scalar)
          : field.listKind === "enum"
            ? fc.integer({ min: -1, max: 5 })
            : depth > 2
              ? undefined
              : messageInit(field.message, depth + 1);
      return element && fc.array(element, { maxLength: 4 });
    }
    default:
      return undefined;
  }
}

/** The init object of a random message of `desc`: every field present or not, any value. */
function messageInit(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    const value = valueArbitrary(field, depth);
    if (value) fields[field.localName] = value;
  }
  return fc.record(fields, { requiredKeys: [] });
}

/** A JSON object with the message's own field names, each holding any JSON value (wrong types). */
function fieldJson(desc: DescMessage): fc.Arbitrary<string> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) fields[field.jsonName] = fc.jsonValue({ maxDepth: 2 });
  return fc.record(fields, { requiredKeys: [] }).map((value) => JSON.stringify(value));
}

/** One request payload: bytes for the binary protocols, text or bytes for JSON. */
type Payload = { kind: string; binary: Uint8Array; json: Uint8Array | string };

function payloadArbitrary(desc: DescMessage): fc.Arbitrary<Payload> {
  const bytes = fc.uint8Array({ maxLength: 300 });
  const message = messageInit(desc).map((init) => create(desc, init));
  return fc.oneof(
    bytes.map((b) => ({ kind: "random bytes", binary: b, json: b })),
    fc.json({ maxDepth: 4 }).map((text) => ({
      kind: "random JSON",
      binary: Buffer.from(text),
      json: text,
    })),
    fieldJson(desc).map((text) => ({
      kind: "fields of any JSON type",
      binary: Buffer.from(text),
      json: text,
    })),
    message.map((m) => {
      const binary = toBinary(desc, m);
      let json: string | Uint8Array = binary;
      try {
        json = toJsonString(desc, m);
      } catch {
        // Some values (a Timestamp out of range) have no JSON form; send the bytes as JSON then.
      }
      return { kind: "random message", binary, json };
    }),
    fc
      .tuple(message, fc.nat(), fc.nat({ max: 255 }), fc.boolean())
      .map(([m, at, byte, truncate]) => {
        const original = toBinary(desc, m);
        const mutated = Buffer.from(original);
        if (mutated.length > 0) {
          if (truncate)
            return {
              kind: "truncated message",
              binary: mutated.subarray(0, at % mutated.length),
              json: "",
            };
          mutated[at % mutated.length] = byte;
        }
        return { kind: "mutated message", binary: mutated, json: mutated };
      }),
  );
}

async function call(
  service: DescService,
  method: DescMethod,
  protocol: Protocol,
  payload: Payload,
  port: number,
): Promise<RpcOutcome> {
  const path = `/${service.typeName}/${method.name}`;
  const binary = protocol !== "connect-json";
  const body = binary ? payload.binary : payload.json;
  if (method.methodKind === "unary") {
    if (protocol === "grpc") {
      const response = await send(port, {
        http: "2",
        path,
        headers: { "content-type": "application/grpc", te: "trailers" },
        body: envelope(body),
      });
      return outcomeOf("grpc", response);
    }
    const response = await send(port, {
      http: "1.1",
      path,
      headers: { "content-type": binary ? "application/proto" : "application/json" },
      body,
    });
    return outcomeOf("connect", response);
  }
  return sendFirst(port, {
    protocol: protocol === "grpc" ? "grpc" : "connect-stream",
    path,
    headers: {
      "content-type":
        protocol === "grpc"
          ? "application/grpc"
          : binary
            ? "application/connect+proto"
            : "application/connect+json",
      ...(protocol === "grpc" ? { te: "trailers" } : {}),
    },
    body: envelope(body),
    // A client stream answers only once the requests end; the others answer the first one.
    endRequest: method.methodKind !== "bidi_streaming",
  });
}

const acceptable = (label: string) =>
  !["internal", "unknown", "closed", "timeout", "data_loss"].includes(label);

const services = [
  ["users", UserService],
  ["inventory", InventoryService],
  ["orders", OrderService],
] as const;

for (const [target, service] of services) {
  test(`${service.typeName}: random input to every RPC over every protocol is never internal`, async () => {
    const url = shop[target].url;
    const port = shop[target].port;
    const startedAt = await startTimeOf(url);
    const seen = new Map<string, number>();
    const run = fc.constantFrom(...service.methods).chain((method) =>
      fc.record({
        method: fc.constant(method),
        protocol: fc.constantFrom<Protocol>("connect-json", "connect-proto", "grpc"),
        payload: payloadArbitrary(method.input),
      }),
    );
    await fc.assert(
      fc.asyncProperty(run, async ({ method, protocol, payload }) => {
        const outcome = await call(service, method, protocol, payload, port);
        const key = `${method.name} ${protocol} ${outcome.label}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        const context = `${method.name} over ${protocol}, ${payload.kind}: ${outcome.label} ${outcome.message}`;
        assert.ok(acceptable(outcome.label), context);
        assert.ok(!internalDetail.test(outcome.message), `internal detail: ${context}`);
        assert.ok(await isAlive(url), `${target} stopped answering after ${context}`);
      }),
      {
        numRuns: Number(process.env.FUZZ_RUNS ?? 130),
        interruptAfterTimeLimit: 17_000,
        markInterruptAsFailure: false,
      },
    );
    assert.equal(await startTimeOf(url), startedAt, `${target} was restarted`);
    // Every RPC and protocol was tried at least once.
    const tried = new Set([...seen.keys()].map((key) => key.split(" ").slice(0, 2).join(" ")));
    console.log(
      `# ${target}: ${[...seen.values()].reduce((a, b) => a + b, 0)} calls, ${tried.size} RPC/protocol pairs`,
    );
    assert.ok(tried.size >= service.methods.length * 2, `only ${[...tried].join(", ")}`);
  });
}
