// Checks that an endpoint really answers the benchmark's request correctly before (and after) it is
// measured: h2load and wrk count any HTTP 200 as a success, so a gRPC error in the trailers or a
// wrong body would otherwise pass unnoticed.
import * as http2 from "node:http2";
import { fromBinary, fromJson, type JsonValue } from "@bufbuild/protobuf";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import { GetUserResponseSchema } from "@shop/api/shop/user/v1/user_service_pb";
import type { LoadTarget } from "./load.ts";

/** Sends `target`'s request once over HTTP/2 and returns the status, headers, trailers and body. */
function h2Request(target: LoadTarget) {
  return new Promise<{
    headers: http2.IncomingHttpHeaders;
    trailers: http2.IncomingHttpHeaders;
    body: Buffer;
  }>((resolve, reject) => {
    const session = http2.connect(target.url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": target.path, ...target.headers });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => {
      headers = received;
    });
    stream.on("trailers", (received) => {
      trailers = received;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("end", () => {
      session.close();
      resolve({ headers, trailers, body: Buffer.concat(chunks) });
    });
    stream.end(target.body);
  });
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Sends the gRPC request of `target` and returns the user of the answer; throws unless grpc-status is 0. */
export async function verifyGrpc(target: LoadTarget): Promise<User> {
  const { headers, trailers, body } = await h2Request(target);
  const where = `${target.url}${target.path} (gRPC)`;
  check(Number(headers[":status"]) === 200, `${where}: HTTP ${headers[":status"]}`);
  const status = trailers["grpc-status"] ?? headers["grpc-status"];
  check(
    status === "0",
    `${where}: grpc-status ${String(status)} ${String(trailers["grpc-message"] ?? headers["grpc-message"] ?? "")}`,
  );
  check(body.length >= 5 && body[0] === 0, `${where}: no uncompressed message frame`);
  const length = body.readUInt32BE(1);
  check(
    body.length === 5 + length,
    `${where}: frame of ${length} bytes in a body of ${body.length}`,
  );
  const user = fromBinary(GetUserResponseSchema, body.subarray(5)).user;
  check(user !== undefined, `${where}: no user in the response`);
  return user;
}

/**
 * Sends the gRPC-web request of `target` over HTTP/2 and returns the user of the answer: one
 * message frame, then the trailer frame with grpc-status 0, both in the body.
 */
export async function verifyGrpcWeb(target: LoadTarget): Promise<User> {
  const { headers, body } = await h2Request(target);
  const where = `${target.url}${target.path} (gRPC-web)`;
  check(Number(headers[":status"]) === 200, `${where}: HTTP ${headers[":status"]}`);
  check(
    String(headers["content-type"]).startsWith("application/grpc-web"),
    `${where}: content-type ${headers["content-type"]}`,
  );
  check(body.length >= 5 && body[0] === 0, `${where}: no uncompressed message frame first`);
  const length = body.readUInt32BE(1);
  const trailer = body.subarray(5 + length);
  check(
    trailer.length >= 5 && trailer[0] === 0x80 && trailer.readUInt32BE(1) === trailer.length - 5,
    `${where}: no trailer frame after the message`,
  );
  const status = /^grpc-status: *(\d+)/im.exec(trailer.subarray(5).toString())?.[1];
  check(status === "0", `${where}: grpc-status ${String(status)} in the trailer frame`);
  const user = fromBinary(GetUserResponseSchema, body.subarray(5, 5 + length)).user;
  check(user !== undefined, `${where}: no user in the response`);
  return user;
}

/** Sends the Connect binary request of `target` over HTTP/2 and returns the user of the answer. */
export async function verifyConnectBinary(target: LoadTarget): Promise<User> {
  const { headers, body } = await h2Request(target);
  const where = `${target.url}${target.path} (Connect binary)`;
  check(
    Number(headers[":status"]) === 200,
    `${where}: HTTP ${headers[":status"]}: ${body.toString()}`,
  );
  check(
    headers["content-type"] === "application/proto",
    `${where}: content-type ${headers["content-type"]}`,
  );
  const user = fromBinary(GetUserResponseSchema, body).user;
  check(user !== undefined, `${where}: no user in the response`);
  return user;
}

/** Sends the Connect JSON request of `target` over HTTP/1.1 and returns the user of the answer. */
export async function verifyConnectJson(target: LoadTarget): Promise<User> {
  const response = await fetch(`${target.url}${target.path}`, {
    method: "POST",
    headers: target.headers,
    body: Buffer.from(target.body),
  });
  const text = await response.text();
  const where = `${target.url}${target.path} (Connect JSON)`;
  check(response.status === 200, `${where}: HTTP ${response.status}: ${text}`);
  check(
    response.headers.get("content-type")?.startsWith("application/json") === true,
    `${where}: content-type ${response.headers.get("content-type")}`,
  );
  // Parsing with the schema also checks that the JSON is valid Connect JSON for the message.
  const user = fromJson(GetUserResponseSchema, JSON.parse(text) as JsonValue).user;
  check(user !== undefined, `${where}: no user in the response`);
  return user;
}

/** Throws unless `actual` is the same user as `expected` in every field. */
export function assertSameUser(actual: User, expected: User, where: string): void {
  const fields = [
    ["id", actual.id, expected.id],
    ["name", actual.name, expected.name],
    ["email", actual.email, expected.email],
    ["status", actual.status, expected.status],
    ["create_time", actual.createTime?.seconds, expected.createTime?.seconds],
    ["create_time.nanos", actual.createTime?.nanos, expected.createTime?.nanos],
    ["update_time", actual.updateTime?.seconds, expected.updateTime?.seconds],
    ["update_time.nanos", actual.updateTime?.nanos, expected.updateTime?.nanos],
    ["version", actual.version, expected.version],
  ] as const;
  for (const [name, got, want] of fields) {
    check(got === want, `${where}: ${name} is ${String(got)}, expected ${String(want)}`);
  }
}
