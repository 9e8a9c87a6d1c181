// The request bytes the load tools and clients send.
import {
  create,
  type DescMessage,
  type MessageInitShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { GetUserRequestSchema } from "@shop/api/shop/user/v1/user_service_pb";

/** The GetUser request of `id` as protobuf bytes (Connect binary body). */
export function getUserRequestBytes(id: string): Uint8Array {
  return toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { id }));
}

/** The GetUser request of `id` as Connect JSON. */
export function getUserRequestJson(id: string): string {
  return toJsonString(GetUserRequestSchema, create(GetUserRequestSchema, { id }));
}

/** Wraps `message` in a gRPC length-prefixed frame (uncompressed). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The message `init` of `schema` in a gRPC frame: a request made anew for every call. */
export function grpcRequest<S extends DescMessage>(schema: S, init: MessageInitShape<S>): Buffer {
  return grpcFrame(toBinary(schema, create(schema, init)));
}

/** The fully qualified path of a UserService method. */
export function userServicePath(method: string): string {
  return `/shop.user.v1.UserService/${method}`;
}
