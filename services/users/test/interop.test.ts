// The real users service against clients nobody here wrote: @grpc/grpc-js with the .proto files
// loaded by @grpc/proto-loader, a grpc-js client built from nothing but server reflection, and
// `buf curl` over Connect, gRPC and gRPC-web.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { RunningService } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase, waitFor } from "@shop/testing";
import { usersService } from "../src/app.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const protoDir = path.join(root, "proto");
const buf = path.join(root, "node_modules", ".bin", "buf");

// Field names as in the .proto files, int64 as strings, enums by name: what a grpc-js user sees.
// google/protobuf/timestamp.proto is not under proto/: protobufjs bundles the well-known types and
// resolves any import path ending in google/protobuf/<name>.proto to them before includeDirs.
const loaderOptions: protoLoader.Options = {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The subset of a grpc-js service client these tests call, with loosely typed messages. */
type Message = Record<string, unknown>;
type Callback = (error: grpc.ServiceError | null, response: Message) => void;
interface GrpcClient extends grpc.Client {
  [method: string]: unknown;
}
type ClientConstructor = new (address: string, credentials: grpc.ChannelCredentials) => GrpcClient;

function constructorAt(definition: protoLoader.PackageDefinition, name: string): ClientConstructor {
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of name.split(".")) node = (node as Record<string, unknown>)[part];
  assert.equal(typeof node, "function", `${name} is not a service of the package definition`);
  return node as ClientConstructor;
}

/** The sub-message `name` of `message`, which must be there. */
function part(message: Message | undefined, name: string): Message {
  const value = message?.[name];
  assert.ok(value && typeof value === "object", `no ${name} in the response`);
  return value as Message;
}

/** Calls a unary method of a grpc-js client and resolves with its response. */
function unary(client: GrpcClient, method: string, request: Message): Promise<Message> {
  return new Promise((resolve, reject) => {
    const call = client[method] as (request: Message, callback: Callback) => void;
    call.call(client, request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Asserts that `promise` fails with the gRPC status `code`, and returns the error. */
async function grpcFailure(
  promise: Promise<unknown>,
  code: grpc.status,
): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    const status = (error as grpc.ServiceError).code;
    assert.equal(grpc.status[status], grpc.status[code], String(error));
    return error as grpc.ServiceError;
  }
  assert.fail(`expected ${grpc.status[code]}, but the call succeeded`);
}

let database: TestDatabase;
let service: RunningService;
let address: string;
let users: GrpcClient;
before(async () => {
  database = await createTestDatabase();
  service = await startTestService(usersService, database.url);
  address = `127.0.0.1:${service.server.port}`;
  const definition = protoLoader.loadSync(["shop/user/v1/user_service.proto"], loaderOptions);
  users = new (constructorAt(definition, "shop.user.v1.UserService"))(
    address,
    grpc.credentials.createInsecure(),
  );
});
after(async () => {
  users.close();
  await service.stop(100);
  await database.drop();
});

const email = (label: string) => `${label}-${randomUUID().slice(0, 8)}@example.com`;

describe("@grpc/grpc-js over h2c", () => {
  test("unary: CreateUser, then GetUser", async () => {
    const address = email("grpcjs");
    const { user } = (await unary(users, "CreateUser", { name: "Grace", email: address })) as {
      user: Message;
    };
    assert.equal(user.email, address);
    assert.equal(user.version, "1");
    assert.equal(user.status, "USER_STATUS_ACTIVE");
    assert.ok(Number((user.create_time as Message).seconds) > 1_600_000_000);

    const got = (await unary(users, "GetUser", { id: user.id })) as { user: Message };
    assert.deepEqual(got.user, user);
  });

  test("unary errors carry gRPC status codes", async () => {
    await grpcFailure(unary(users, "GetUser", { id: randomUUID() }), grpc.status.NOT_FOUND);
    await grpcFailure(
      unary(users, "CreateUser", { name: "", email: email("x") }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  test("a method the service does not have is UNIMPLEMENTED", async () => {
    const call = new Promise((resolve, reject) =>
      users.makeUnaryRequest(
        "/shop.user.v1.UserService/Nope",
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.alloc(0),
        (error, value) => (error ? reject(error) : resolve(value)),
      ),
    );
    await grpcFailure(call, grpc.status.UNIMPLEMENTED);
  });

  test("server streaming: WatchUsers receives a user created after the watch opens", async () => {
    const watch = (
      users.WatchUsers as (request: Message) => grpc.ClientReadableStream<Message>
    ).call(users, { start_revision: "0" });
    const responses: Message[] = [];
    const ended = new Promise<grpc.StatusObject>((resolve) => watch.on("status", resolve));
    watch.on("error", () => {});
    watch.on("data", (response: Message) => responses.push(response));
    await waitFor(() => responses.length > 0, { message: "no first response" });

    const address = email("watched");
    await unary(users, "CreateUser", { name: "Watched", email: address });
    const event = await waitFor(() =>
      responses
        .flatMap((response) => response.events as Message[])
        .find((candidate) => (candidate.user as Message).email === address),
    );
    assert.equal(event.type, "EVENT_TYPE_CREATED");
    watch.cancel();
    assert.equal((await ended).code, grpc.status.CANCELLED);
  });

  test("client streaming: BatchCreateUsers creates all users of the stream", async () => {
    const emails = [email("b"), email("b"), email("b")];
    const response = await new Promise<Message>((resolve, reject) => {
      const call = (
        users.BatchCreateUsers as (callback: Callback) => grpc.ClientWritableStream<Message>
      ).call(users, (error, value) => (error ? reject(error) : resolve(value)));
      for (const address of emails) call.write({ name: "Batch", email: address });
      call.end();
    });
    assert.deepEqual(
      (response.users as Message[]).map((user) => user.email),
      emails,
    );
  });

  test("client streaming: a failing 3rd message is ALREADY_EXISTS naming index 2", async () => {
    const taken = email("taken");
    await unary(users, "CreateUser", { name: "Taken", email: taken });
    const call = new Promise<Message>((resolve, reject) => {
      const stream = (
        users.BatchCreateUsers as (callback: Callback) => grpc.ClientWritableStream<Message>
      ).call(users, (error, value) => (error ? reject(error) : resolve(value)));
      for (const address of [email("ok"), email("ok"), taken, email("ok")]) {
        stream.write({ name: "Batch", email: address });
      }
      stream.end();
    });
    const error = await grpcFailure(call, grpc.status.ALREADY_EXISTS);
    assert.match(error.details, /\b2\b/);
  });

  test("grpc.health.v1.Health/Check is SERVING for the server and for UserService", async () => {
    const definition = protoLoader.loadSync(["grpc/health/v1/health.proto"], loaderOptions);
    const health = new (constructorAt(definition, "grpc.health.v1.Health"))(
      address,
      grpc.credentials.createInsecure(),
    );
    try {
      for (const name of ["", "shop.user.v1.UserService"]) {
        // The first database check runs as the server starts; SERVING follows within moments.
        await waitFor(
          async () => (await unary(health, "Check", { service: name })).status === "SERVING",
          {
            message: `Check(${JSON.stringify(name)}) never became SERVING`,
          },
        );
      }
      await grpcFailure(
        unary(health, "Check", { service: "no.such.Service" }),
        grpc.status.NOT_FOUND,
      );
    } finally {
      health.close();
    }
  });
});

describe("gRPC server reflection, read by grpc-js", () => {
  /** Sends `requests` on one ServerReflectionInfo stream and returns the responses, in order. */
  async function reflect(version: "v1" | "v1alpha", requests: Message[]): Promise<Message[]> {
    const definition = protoLoader.loadSync(
      [`grpc/reflection/${version}/reflection.proto`],
      loaderOptions,
    );
    const client = new (constructorAt(definition, `grpc.reflection.${version}.ServerReflection`))(
      address,
      grpc.credentials.createInsecure(),
    );
    try {
      const call = (
        client.ServerReflectionInfo as () => grpc.ClientDuplexStream<Message, Message>
      ).call(client);
      const responses: Message[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (response: Message) => responses.push(response));
        call.on("error", reject);
        call.on("end", resolve);
      });
      // Bidirectional: each answer arrives before the next request is sent.
      for (const request of requests) {
        const before = responses.length;
        call.write(request);
        await waitFor(() => responses.length > before, { message: "no reflection answer" });
      }
      call.end();
      await done;
      return responses;
    } finally {
      client.close();
    }
  }

  /** Wraps serialized FileDescriptorProtos in a FileDescriptorSet (field 1, repeated bytes). */
  function fileDescriptorSet(files: Buffer[]): Buffer {
    const parts: Buffer[] = [];
    for (const file of files) {
      const length: number[] = [];
      let rest = file.length;
      while (rest > 0x7f) {
        length.push((rest & 0x7f) | 0x80);
        rest >>>= 7;
      }
      length.push(rest);
      parts.push(Buffer.from([0x0a, ...length]), file);
    }
    return Buffer.concat(parts);
  }

  for (const version of ["v1", "v1alpha"] as const) {
    test(`${version}: list_services names UserService, health and reflection`, async () => {
      const [response] = await reflect(version, [{ list_services: "" }]);
      const names = (part(response, "list_services_response").service as Message[]).map(
        (entry) => entry.name,
      );
      for (const name of [
        "shop.user.v1.UserService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]) {
        assert.ok(names.includes(name), `${name} missing from ${names.join(", ")}`);
      }
    });
  }

  test("file_containing_symbol returns descriptors that build a working client", async () => {
    const responses = await reflect("v1", [
      { file_containing_symbol: "shop.user.v1.UserService" },
      { file_containing_symbol: "shop.user.v1.NoSuchThing" },
    ]);
    const files = part(responses[0], "file_descriptor_response").file_descriptor_proto as Buffer[];
    assert.ok(files.length >= 3, "the service's file and its imports");
    assert.equal(part(responses[1], "error_response").error_code, grpc.status.NOT_FOUND);

    // The descriptors alone, with no .proto file, must describe the service well enough to call it.
    const definition = protoLoader.loadFileDescriptorSetFromBuffer(fileDescriptorSet(files), {
      ...loaderOptions,
      includeDirs: [],
    });
    assert.ok("google.protobuf.Timestamp" in definition, "the Timestamp import is included");
    const method = (definition["shop.user.v1.UserService"] as protoLoader.ServiceDefinition)
      .GetUser;
    assert.equal(method?.path, "/shop.user.v1.UserService/GetUser");

    const reflected = new (constructorAt(definition, "shop.user.v1.UserService"))(
      address,
      grpc.credentials.createInsecure(),
    );
    try {
      const address = email("reflected");
      const { user } = (await unary(reflected, "CreateUser", { name: "R", email: address })) as {
        user: Message;
      };
      const got = (await unary(reflected, "GetUser", { id: user.id })) as { user: Message };
      assert.equal(got.user.email, address);
    } finally {
      reflected.close();
    }
  });
});

describe("buf curl through reflection", () => {
  /** Runs `buf curl` and returns its exit code and output. */
  function bufCurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(buf, ["curl", ...args], { timeout: 15_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }
  const url = (method: string) => `${service.server.url}/shop.user.v1.UserService/${method}`;
  const protocolFlags: [string, string[]][] = [
    ["connect", ["--protocol", "connect"]],
    ["grpc", ["--protocol", "grpc", "--http2-prior-knowledge"]],
    ["grpcweb", ["--protocol", "grpcweb"]],
  ];

  test("--list-methods lists every method of UserService", async () => {
    const { code, stdout, stderr } = await bufCurl(["--list-methods", service.server.url]);
    assert.equal(code, 0, stderr);
    const methods = stdout.trim().split("\n");
    for (const method of [
      "CreateUser",
      "GetUser",
      "ListUsers",
      "UpdateUser",
      "WatchUsers",
      "BatchCreateUsers",
    ]) {
      assert.ok(methods.includes(`shop.user.v1.UserService/${method}`), `${method}: ${stdout}`);
    }
  });

  for (const [protocol, flags] of protocolFlags) {
    test(`--protocol ${protocol}: ListUsers and GetUser`, async () => {
      const address = email(`buf-${protocol}`);
      const { user } = (await unary(users, "CreateUser", { name: "Buf", email: address })) as {
        user: Message;
      };

      // Three independent processes; run side by side to keep the suite quick.
      const [listed, got, missing] = await Promise.all([
        bufCurl([...flags, "--data", '{"page_size": 1000}', url("ListUsers")]),
        bufCurl([...flags, "--data", JSON.stringify({ id: user.id }), url("GetUser")]),
        bufCurl([...flags, "--data", JSON.stringify({ id: randomUUID() }), url("GetUser")]),
      ]);
      assert.equal(listed.code, 0, listed.stderr);
      const page = JSON.parse(listed.stdout) as { users: { email: string }[]; revision: string };
      assert.ok(page.users.some((candidate) => candidate.email === address));
      assert.ok(BigInt(page.revision) > 0n);

      assert.equal(got.code, 0, got.stderr);
      assert.equal((JSON.parse(got.stdout) as { user: { email: string } }).user.email, address);

      assert.notEqual(missing.code, 0);
      assert.match(missing.stdout + missing.stderr, /not_found/);
    });
  }
});
