// The contract's rules on the wire: a request breaking any rule of any RPC of the shop is refused by
// the runtime before its handler runs, with invalid_argument, a message naming the field, and a
// buf.validate.Violations detail naming the field path and the rule. Over gRPC with @grpc/grpc-js
// (messages by @grpc/proto-loader from the .proto files, the detail decoded by protobufjs), and over
// Connect and gRPC-web with `buf curl` (which decodes the detail itself, through reflection): clients
// nobody here wrote. Every valid request of the table reaches its handler, so each case breaks the
// one rule it names.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createLogger, defaultLimits, type Server, serve } from "@shop/mesh";
import protobuf from "protobufjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = path.join(root, "proto");
const buf = path.join(root, "node_modules", ".bin", "buf");

type Json = Record<string, unknown>;

/** One broken rule: the requests that break it, and the field and rule the refusal must name. */
interface Case {
  rpc: string;
  name: string;
  /** One request for unary and server-streaming methods; the messages of the stream otherwise. */
  requests: Json[];
  /** The field path as protovalidate prints it; empty for a rule of the whole message. */
  field: string;
  rule: string;
}

const services: DescService[] = [UserService, OrderService, InventoryService];
const userId = randomUUID();
const sku = "TEA-GREEN-100G";
const line = (overrides: Json = {}) => ({ sku, quantity: "1", ...overrides });
const skus = (count: number) =>
  Array.from({ length: count }, (_, i) => line({ sku: `SKU-${String(i).padStart(3, "0")}` }));
const ids = (count: number) => Array.from({ length: count }, () => randomUUID());

/** A valid request for every RPC, which each case breaks in one way. */
const valid: Record<string, Json[]> = {
  "shop.user.v1.UserService/CreateUser": [{ name: "Ada Lovelace", email: "ada@example.com" }],
  "shop.user.v1.UserService/GetUser": [{ id: userId }],
  "shop.user.v1.UserService/ListUsers": [{ page_size: 10 }],
  "shop.user.v1.UserService/UpdateUser": [{ id: userId, version: "1", name: "Ada" }],
  "shop.user.v1.UserService/WatchUsers": [{ start_revision: "0" }],
  "shop.user.v1.UserService/BatchCreateUsers": [
    { name: "Ada", email: "ada@example.com" },
    { name: "Grace", email: "grace@example.com" },
  ],
  "shop.order.v1.OrderService/CreateOrder": [
    { user_id: userId, items: [line()], request_id: randomUUID() },
  ],
  "shop.order.v1.OrderService/GetOrder": [{ id: randomUUID() }],
  "shop.order.v1.OrderService/ListOrders": [{ user_id: userId, page_size: 10 }],
  "shop.order.v1.OrderService/CancelOrder": [{ id: randomUUID() }],
  "shop.order.v1.OrderService/WatchOrders": [{ start_revision: "0", user_id: userId }],
  "shop.order.v1.OrderService/TrackOrders": [
    { add_order_ids: ids(2) },
    { remove_order_ids: ids(1) },
  ],
  "shop.inventory.v1.InventoryService/ListProducts": [{ page_size: 10 }],
  "shop.inventory.v1.InventoryService/GetProduct": [{ sku }],
  "shop.inventory.v1.InventoryService/AdjustStock": [{ sku, delta: "-2" }],
  "shop.inventory.v1.InventoryService/ReserveStock": [{ order_id: "order-1", items: [line()] }],
  "shop.inventory.v1.InventoryService/ReleaseStock": [{ order_id: "order-1" }],
  "shop.inventory.v1.InventoryService/WatchStock": [{ start_revision: "0" }],
};

/** `rpc`'s valid request with `change` made to its message number `index`. */
function broken(rpc: string, change: Json, index = 0): Json[] {
  const requests = (valid[rpc] ?? []).map((request) => ({ ...request }));
  requests[index] = { ...requests[index], ...change };
  return requests;
}

const createUser = "shop.user.v1.UserService/CreateUser";
const updateUser = "shop.user.v1.UserService/UpdateUser";
const batch = "shop.user.v1.UserService/BatchCreateUsers";
const createOrder = "shop.order.v1.OrderService/CreateOrder";
const track = "shop.order.v1.OrderService/TrackOrders";
const reserve = "shop.inventory.v1.InventoryService/ReserveStock";

const cases: Case[] = [
  ...(
    [
      ["an empty name", { name: "" }, "name", "string.person_name.not_blank"],
      ["a name of spaces", { name: "   " }, "name", "string.person_name.not_blank"],
      ["a name of 201 characters", { name: "x".repeat(201) }, "name", "string.person_name.max_len"],
      ["a name with a bell", { name: "Ada\u0007" }, "name", "string.person_name.no_control"],
      ["an email without @", { email: "ada.example.com" }, "email", "string.email_address.format"],
      ["an email without a dot", { email: "ada@example" }, "email", "string.email_address.format"],
      [
        "an email of 262 characters",
        { email: `${"a".repeat(250)}@example.com` },
        "email",
        "string.email_address.max_len",
      ],
    ] as const
  ).map(([name, change, field, rule]) => ({
    rpc: createUser,
    name,
    requests: broken(createUser, change),
    field,
    rule,
  })),
  {
    rpc: "shop.user.v1.UserService/GetUser",
    name: "an id that is no UUID",
    requests: [{ id: "1 or 1=1" }],
    field: "id",
    rule: "string.uuid",
  },
  {
    rpc: "shop.user.v1.UserService/GetUser",
    name: "an empty id",
    requests: [{ id: "" }],
    field: "id",
    rule: "string.uuid_empty",
  },
  {
    rpc: "shop.user.v1.UserService/ListUsers",
    name: "a negative page size",
    requests: [{ page_size: -1 }],
    field: "page_size",
    rule: "int32.gte",
  },
  ...(
    [
      ["an id that is no UUID", { id: "nope" }, "id", "string.uuid"],
      ["version 0", { version: "0" }, "version", "int64.gte"],
      ["an empty name", { name: "" }, "name", "string.person_name.not_blank"],
      ["a malformed email", { email: "nope" }, "email", "string.email_address.format"],
      [
        "an unset status",
        { status: "USER_STATUS_UNSPECIFIED" },
        "status",
        "update_user.status.set",
      ],
      ["an unknown status", { status: 7 }, "status", "enum.defined_only"],
    ] as const
  ).map(([name, change, field, rule]) => ({
    rpc: updateUser,
    name,
    requests: broken(updateUser, change),
    field,
    rule,
  })),
  {
    rpc: updateUser,
    name: "no change at all",
    requests: [{ id: userId, version: "1" }],
    field: "",
    rule: "update_user.changes_something",
  },
  {
    rpc: "shop.user.v1.UserService/WatchUsers",
    name: "a negative start revision",
    requests: [{ start_revision: "-1" }],
    field: "start_revision",
    rule: "int64.gte",
  },
  {
    rpc: batch,
    name: "a malformed email in the second message",
    requests: broken(batch, { email: "grace" }, 1),
    field: "email",
    rule: "string.email_address.format",
  },
  {
    rpc: batch,
    name: "an empty name in the first message",
    requests: broken(batch, { name: "" }, 0),
    field: "name",
    rule: "string.person_name.not_blank",
  },
  ...(
    [
      ["a user id that is no UUID", { user_id: "nope" }, "user_id", "string.uuid"],
      ["no items", { items: [] }, "items", "repeated.stock_lines.not_empty"],
      ["101 items", { items: skus(101) }, "items", "repeated.max_items"],
      [
        "a sku twice",
        { items: [line(), line({ quantity: "2" })] },
        "items",
        "repeated.stock_lines.unique_sku",
      ],
      ["a lower-case sku", { items: [line({ sku: "tea" })] }, "items[0].sku", "string.sku"],
      [
        "a quantity of 0",
        { items: [line({ quantity: "0" })] },
        "items[0].quantity",
        "int64.gte_lte",
      ],
      [
        "a quantity of 10001",
        { items: [line(), line({ sku: "MUG", quantity: "10001" })] },
        "items[1].quantity",
        "int64.gte_lte",
      ],
      ["a request id that is no UUID", { request_id: "12345" }, "request_id", "string.uuid"],
    ] as const
  ).map(([name, change, field, rule]) => ({
    rpc: createOrder,
    name,
    requests: broken(createOrder, change),
    field,
    rule,
  })),
  {
    rpc: "shop.order.v1.OrderService/GetOrder",
    name: "an id that is no UUID",
    requests: [{ id: "nope" }],
    field: "id",
    rule: "string.uuid",
  },
  {
    rpc: "shop.order.v1.OrderService/ListOrders",
    name: "a user id that is no UUID",
    requests: [{ user_id: "nope" }],
    field: "user_id",
    rule: "string.uuid",
  },
  {
    rpc: "shop.order.v1.OrderService/ListOrders",
    name: "a negative page size",
    requests: [{ page_size: -5 }],
    field: "page_size",
    rule: "int32.gte",
  },
  {
    rpc: "shop.order.v1.OrderService/CancelOrder",
    name: "an id that is no UUID",
    requests: [{ id: "nope" }],
    field: "id",
    rule: "string.uuid",
  },
  {
    rpc: "shop.order.v1.OrderService/WatchOrders",
    name: "a negative start revision",
    requests: [{ start_revision: "-1" }],
    field: "start_revision",
    rule: "int64.gte",
  },
  {
    rpc: "shop.order.v1.OrderService/WatchOrders",
    name: "a user id that is no UUID",
    requests: [{ user_id: "nope" }],
    field: "user_id",
    rule: "string.uuid",
  },
  {
    rpc: track,
    name: "an added id that is no UUID, in the second message",
    requests: broken(track, { add_order_ids: ["nope"] }, 1),
    field: "add_order_ids[0]",
    rule: "string.uuid",
  },
  {
    rpc: track,
    name: "a removed id that is no UUID",
    requests: broken(track, { remove_order_ids: [randomUUID(), "nope"] }, 1),
    field: "remove_order_ids[1]",
    rule: "string.uuid",
  },
  {
    rpc: track,
    name: "1001 ids added at once",
    requests: broken(track, { add_order_ids: ids(1001) }, 0),
    field: "add_order_ids",
    rule: "repeated.max_items",
  },
  {
    rpc: track,
    name: "1001 ids removed at once",
    requests: broken(track, { remove_order_ids: ids(1001) }, 1),
    field: "remove_order_ids",
    rule: "repeated.max_items",
  },
  {
    rpc: "shop.inventory.v1.InventoryService/ListProducts",
    name: "a negative page size",
    requests: [{ page_size: -1 }],
    field: "page_size",
    rule: "int32.gte",
  },
  {
    rpc: "shop.inventory.v1.InventoryService/GetProduct",
    name: "a lower-case sku",
    requests: [{ sku: "tea" }],
    field: "sku",
    rule: "string.sku",
  },
  {
    rpc: "shop.inventory.v1.InventoryService/AdjustStock",
    name: "a delta of 0",
    requests: [{ sku, delta: "0" }],
    field: "delta",
    rule: "adjust_stock.delta.not_zero",
  },
  {
    rpc: "shop.inventory.v1.InventoryService/AdjustStock",
    name: "an empty sku",
    requests: [{ sku: "", delta: "1" }],
    field: "sku",
    rule: "string.sku",
  },
  ...(
    [
      ["a malformed order id", { order_id: "order 1" }, "order_id", "string.order_key"],
      ["no items", { items: [] }, "items", "repeated.stock_lines.not_empty"],
      ["101 items", { items: skus(101) }, "items", "repeated.max_items"],
      ["a sku twice", { items: [line(), line()] }, "items", "repeated.stock_lines.unique_sku"],
      ["a sku with a space", { items: [line({ sku: "TEA 1" })] }, "items[0].sku", "string.sku"],
      [
        "a negative quantity",
        { items: [line({ quantity: "-1" })] },
        "items[0].quantity",
        "int64.gte",
      ],
    ] as const
  ).map(([name, change, field, rule]) => ({
    rpc: reserve,
    name,
    requests: broken(reserve, change),
    field,
    rule,
  })),
  {
    rpc: "shop.inventory.v1.InventoryService/ReleaseStock",
    name: "an empty order id",
    requests: [{ order_id: "" }],
    field: "order_id",
    rule: "string.order_key",
  },
  {
    rpc: "shop.inventory.v1.InventoryService/WatchStock",
    name: "a negative start revision",
    requests: [{ start_revision: "-1" }],
    field: "start_revision",
    rule: "int64.gte",
  },
];

/** The answer every handler gives: a valid request gets this far, an invalid one never does. */
const reached = () => new ConnectError("the handler ran", Code.FailedPrecondition);

/** Handlers for every method of `service` that read the whole request, then answer `reached`. */
function reachedHandlers(service: DescService) {
  const readAll = async (requests: AsyncIterable<unknown>) => {
    for await (const _ of requests) {
      // Each message is checked as the handler reads it: all of them are read.
    }
  };
  // A stream that fails before its first message.
  const failing = () => ({
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(reached()) }),
  });
  const implementation: Record<string, unknown> = {};
  for (const method of service.methods) {
    switch (method.methodKind) {
      case "unary":
        implementation[method.localName] = () => Promise.reject(reached());
        break;
      case "server_streaming":
        implementation[method.localName] = failing;
        break;
      case "client_streaming":
        implementation[method.localName] = async (requests: AsyncIterable<unknown>) => {
          await readAll(requests);
          throw reached();
        };
        break;
      case "bidi_streaming":
        implementation[method.localName] = (requests: AsyncIterable<unknown>) => ({
          [Symbol.asyncIterator]: () => ({
            next: () => readAll(requests).then(() => Promise.reject(reached())),
          }),
        });
        break;
    }
  }
  return implementation;
}

let server: Server;

before(async () => {
  server = await serve({
    name: "contract-rules-test",
    services,
    routes(router: ConnectRouter) {
      for (const service of services) router.service(service, reachedHandlers(service) as never);
    },
    port: 0,
    host: "127.0.0.1",
    limits: defaultLimits,
    corsOrigins: [],
    logger: createLogger("contract-rules-test", "silent"),
    readiness: async () => ({}),
  });
});

after(() => server.close(0));

/** What a client found in a refusal: its code, its message, and the violations of its detail. */
interface Refusal {
  code: string;
  message: string;
  violations: { field: string; rule: string; message: string }[];
}

/** A Violations field path as protovalidate prints it: `items[1].quantity`. */
function pathText(
  elements: { fieldName?: string; field_name?: string; index?: unknown }[] | undefined,
): string {
  return (elements ?? [])
    .map((element) => {
      const name = element.fieldName ?? element.field_name ?? "";
      return element.index === undefined || element.index === null
        ? name
        : `${name}[${String(element.index)}]`;
    })
    .join(".");
}

function assertRefusal(refusal: Refusal, testCase: Case): void {
  assert.equal(refusal.code, "invalid_argument", refusal.message);
  const found = refusal.violations.find(
    (violation) => violation.field === testCase.field && violation.rule === testCase.rule,
  );
  assert.ok(
    found,
    `no violation of ${testCase.rule} on "${testCase.field}" in ${JSON.stringify(refusal.violations)}`,
  );
  assert.ok(found.message.length > 0, "the violation says what to change");
  // The error's own message names the field and says what to change, for a person to read.
  if (testCase.field !== "") assert.ok(refusal.message.includes(testCase.field), refusal.message);
  assert.ok(refusal.message.includes(found.message), refusal.message);
}

describe("gRPC, with @grpc/grpc-js", () => {
  const definition = protoLoader.loadSync(
    [
      "shop/user/v1/user_service.proto",
      "shop/order/v1/order_service.proto",
      "shop/inventory/v1/inventory_service.proto",
    ],
    { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true },
  );
  const loaded = grpc.loadPackageDefinition(definition);
  // protobufjs decodes the status detail, as a grpc-js user would: google.rpc.Status and its Any
  // details by their published shape, buf.validate.Violations from the vendored validate.proto.
  const types = new protobuf.Root().loadSync(path.join(protoDir, "buf/validate/validate.proto"), {
    keepCase: true,
  });
  types.addJSON({
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "Detail", id: 3 },
              },
            },
            Detail: {
              fields: {
                type_url: { type: "string", id: 1 },
                value: { type: "bytes", id: 2 },
              },
            },
          },
        },
      },
    },
  });
  const Status = types.lookupType("google.rpc.Status");
  const Violations = types.lookupType("buf.validate.Violations");
  const clients = new Map<string, grpc.Client>();

  const clientOf = (serviceName: string) => {
    let client = clients.get(serviceName);
    if (client === undefined) {
      let node: unknown = loaded;
      for (const part of serviceName.split(".")) node = (node as Json)[part];
      const Client = node as new (
        address: string,
        credentials: grpc.ChannelCredentials,
      ) => grpc.Client;
      client = new Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
      clients.set(serviceName, client);
    }
    return client;
  };
  after(() => {
    for (const client of clients.values()) client.close();
  });

  /** Calls `rpc` with `requests` and resolves with the error it fails with. */
  function failure(rpc: string, requests: Json[]): Promise<grpc.ServiceError> {
    const [serviceName = "", methodName = ""] = rpc.split("/");
    const client = clientOf(serviceName) as unknown as Record<
      string,
      (...args: unknown[]) => unknown
    >;
    const method = services
      .find((service) => service.typeName === serviceName)
      ?.methods.find((candidate) => candidate.name === methodName);
    assert.ok(method, rpc);
    const call = client[methodName]?.bind(client);
    assert.ok(call, rpc);
    return new Promise((resolve, reject) => {
      const settle = (error: grpc.ServiceError | null) =>
        error ? resolve(error) : reject(new Error(`${rpc} succeeded`));
      switch (method.methodKind) {
        case "unary":
          call(requests[0], (error: grpc.ServiceError | null) => settle(error));
          return;
        case "client_streaming": {
          const stream = call((error: grpc.ServiceError | null) =>
            settle(error),
          ) as grpc.ClientWritableStream<Json>;
          for (const request of requests) stream.write(request);
          stream.end();
          return;
        }
        default: {
          const stream = (
            method.methodKind === "server_streaming" ? call(requests[0]) : call()
          ) as grpc.ClientDuplexStream<Json, Json>;
          stream.on("data", () => {});
          stream.on("error", (error: grpc.ServiceError) => resolve(error));
          stream.on("end", () => reject(new Error(`${rpc} ended without an error`)));
          if (method.methodKind === "bidi_streaming") {
            for (const request of requests) stream.write(request);
            stream.end();
          }
        }
      }
    });
  }

  /**
   * The status message as grpc-js shows it (decoded with decodeURI): the runtime encodes it as the
   * gRPC specification says, so that it reads as written, ':' '@' and ',' included.
   */
  function grpcMessage(error: grpc.ServiceError): string {
    return error.details;
  }

  function refusalOf(error: grpc.ServiceError): Refusal {
    const [bytes] = error.metadata.get("grpc-status-details-bin");
    assert.ok(Buffer.isBuffer(bytes), "the refusal carries grpc-status-details-bin");
    const status = Status.toObject(Status.decode(bytes)) as {
      details?: { type_url: string; value: Uint8Array }[];
    };
    const detail = status.details?.find((any) => any.type_url.endsWith("/buf.validate.Violations"));
    assert.ok(detail, "the refusal carries a buf.validate.Violations detail");
    const decoded = Violations.toObject(Violations.decode(detail.value), { longs: String }) as {
      violations: {
        field?: { elements?: { field_name?: string; index?: string }[] };
        rule_id?: string;
        message?: string;
      }[];
    };
    return {
      code:
        grpc.status[error.code] === "INVALID_ARGUMENT" ? "invalid_argument" : String(error.code),
      message: grpcMessage(error),
      violations: decoded.violations.map((violation) => ({
        field: pathText(violation.field?.elements),
        rule: violation.rule_id ?? "",
        message: violation.message ?? "",
      })),
    };
  }

  test("every valid request of the table reaches its handler", async () => {
    for (const [rpc, requests] of Object.entries(valid)) {
      const error = await failure(rpc, requests);
      assert.equal(error.code, grpc.status.FAILED_PRECONDITION, `${rpc}: ${error.details}`);
      assert.equal(error.details, "the handler ran", rpc);
    }
  });

  for (const testCase of cases) {
    test(`${testCase.rpc.split(".").at(-1)}: ${testCase.name}`, async () => {
      assertRefusal(refusalOf(await failure(testCase.rpc, testCase.requests)), testCase);
    });
  }

  test("a client stream's refusal names the message that broke the rule", async () => {
    const error = await failure(batch, broken(batch, { email: "grace" }, 1));
    assert.match(grpcMessage(error), /^message 1 of the stream: email /);
  });
});

/** Runs `buf curl` with `messages` on its standard input, and returns its exit code and output. */
function bufCurl(
  args: string[],
  messages: Json[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(buf, ["curl", "--data", "@-", ...args], { timeout: 30_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(messages.map((message) => JSON.stringify(message)).join("\n"));
  });
}

/** The refusal `buf curl` printed: its error JSON, with the detail it decoded through reflection. */
function refusalFromBufCurl(output: string): Refusal {
  const start = output.indexOf("{");
  assert.ok(start >= 0, `buf curl printed no error: ${output}`);
  const error = JSON.parse(output.slice(start)) as {
    code: string;
    message: string;
    details?: { type: string; debug?: { violations?: Json[] } }[];
  };
  const detail = error.details?.find((candidate) => candidate.type === "buf.validate.Violations");
  assert.ok(detail?.debug?.violations, `no decoded buf.validate.Violations detail: ${output}`);
  return {
    code: error.code,
    message: error.message,
    violations: detail.debug.violations.map((violation) => ({
      field: pathText(
        (violation.field as { elements?: { fieldName?: string; index?: unknown }[] } | undefined)
          ?.elements,
      ),
      rule: String(violation.ruleId ?? ""),
      message: String(violation.message ?? ""),
    })),
  };
}

for (const [protocol, flags] of [
  ["Connect", ["--protocol", "connect"]],
  ["gRPC-web", ["--protocol", "grpcweb"]],
] as const) {
  describe(`${protocol}, with buf curl`, () => {
    // Streams in both directions need HTTP/2; every call uses it, as buf curl allows both.
    const args = (rpc: string) => [...flags, "--http2-prior-knowledge", `${server.url}/${rpc}`];

    test("a valid request reaches its handler", async () => {
      const { code, stdout, stderr } = await bufCurl(args(createUser), valid[createUser] ?? []);
      assert.notEqual(code, 0);
      assert.match(stdout + stderr, /failed_precondition/);
      assert.match(stdout + stderr, /the handler ran/);
    });

    for (const testCase of cases) {
      test(`${testCase.rpc.split(".").at(-1)}: ${testCase.name}`, async () => {
        const { code, stdout, stderr } = await bufCurl(args(testCase.rpc), testCase.requests);
        assert.notEqual(code, 0, stdout);
        assertRefusal(refusalFromBufCurl(stderr + stdout), testCase);
      });
    }
  });
}
