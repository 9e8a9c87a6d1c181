// The limit: a minimal hand-written node:http2 server for GetUser over gRPC (h2c) and the Connect
// protocol's binary unary form. It does the work a request needs and nothing else: reads the body,
// decodes the request with protobuf-es, calls the same domain function and wire conversion as our
// handlers, encodes the response and answers. No routing table, interceptors, deadlines, limits,
// compression, metrics or tracing.
//   --also-http1   also serves the HTTP/1.1 limit (raw-http1-server.ts) on a port of its own, so
//                  that the Connect JSON rounds find a raw process that has served the HTTP/2
//                  protocols first, as ours has (bench/README.md, "One serving core")

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  GetUserRequestSchema,
  GetUserResponseSchema,
} from "@shop/api/shop/user/v1/user_service_pb";
import { UserNotFoundError } from "../../services/users/src/domain/errors.ts";
import { getUser } from "../../services/users/src/domain/get-user.ts";
import { userToProto } from "../../services/users/src/transport/convert.ts";
import { createMemoryUserRepository } from "../lib/fixture.ts";
import { grpcFrame, userServicePath } from "../lib/requests.ts";
import { argument, reportFailure, reportReady } from "./ipc.ts";
import { createRawHttp1Server } from "./raw-http1-server.ts";

const users = createMemoryUserRepository();
const getUserPath = userServicePath("GetUser");

function concat(chunks: Buffer[]): Buffer {
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

function grpcError(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc+proto",
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(message),
    },
    { endStream: true },
  );
}

function connectError(
  stream: http2.ServerHttp2Stream,
  status: number,
  code: string,
  message: string,
) {
  stream.respond({ ":status": status, "content-type": "application/json" });
  stream.end(JSON.stringify({ code, message }));
}

async function answer(body: Uint8Array): Promise<Uint8Array> {
  const request = fromBinary(GetUserRequestSchema, body);
  const user = await getUser(users, request.id);
  return toBinary(
    GetUserResponseSchema,
    create(GetUserResponseSchema, { user: userToProto(user) }),
  );
}

const okTrailerBytes = Buffer.from("grpc-status: 0\r\n");
const okTrailerFrame = Buffer.concat([
  Buffer.from([0x80, 0, 0, 0, okTrailerBytes.length]),
  okTrailerBytes,
]);

const server = http2.createServer({ settings: { maxConcurrentStreams: 256 } });
server.on("stream", (stream, headers) => {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("error", () => {});
  stream.on("end", () => {
    const grpc = String(headers["content-type"] ?? "").startsWith("application/grpc");
    if (headers[":path"] !== getUserPath) {
      if (grpc) grpcError(stream, 12, "unimplemented");
      else connectError(stream, 404, "unimplemented", "unimplemented");
      return;
    }
    const body = concat(chunks);
    if (grpc) {
      if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
        grpcError(stream, 13, "malformed request frame");
        return;
      }
      const grpcWeb = String(headers["content-type"]).startsWith("application/grpc-web");
      answer(body.subarray(5)).then(
        (response) => {
          if (stream.destroyed) return;
          if (grpcWeb) {
            // gRPC-web: the message frame, then the status as a trailer frame, both in the body.
            stream.respond({ ":status": 200, "content-type": "application/grpc-web+proto" });
            stream.end(Buffer.concat([grpcFrame(response), okTrailerFrame]));
            return;
          }
          stream.respond(
            { ":status": 200, "content-type": "application/grpc+proto" },
            { waitForTrailers: true },
          );
          stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(grpcFrame(response));
        },
        (error: unknown) =>
          error instanceof UserNotFoundError
            ? grpcError(stream, 5, error.message)
            : grpcError(stream, 13, "internal error"),
      );
      return;
    }
    answer(body).then(
      (response) => {
        if (stream.destroyed) return;
        stream.respond({ ":status": 200, "content-type": "application/proto" });
        stream.end(response);
      },
      (error: unknown) =>
        error instanceof UserNotFoundError
          ? connectError(stream, 404, "not_found", error.message)
          : connectError(stream, 500, "internal", "internal error"),
    );
  });
});
server.on("sessionError", () => {});
const http1 = argument("also-http1", "off") === "on" ? createRawHttp1Server() : undefined;
http1?.on("error", reportFailure);
server.on("error", reportFailure);
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  const stop = async () => {
    server.close();
    http1?.close();
    http1?.closeAllConnections();
  };
  if (http1 === undefined) reportReady(port, stop);
  else {
    http1.listen(0, "127.0.0.1", () => {
      reportReady(port, stop, (http1.address() as AddressInfo).port);
    });
  }
});
