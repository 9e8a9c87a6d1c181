// Redaction by the contract: every field marked `debug_redact` is replaced, however deep (a nested
// message, a list of them, an Any of a known type), in a message or in the plain object a handler
// answered with; an Any of an unknown type is not written.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import { UserSchema } from "@shop/api/shop/user/v1/user_pb";
import {
  file_shop_user_v1_user_service,
  ListUsersResponseSchema,
  UpdateUserRequestSchema,
} from "@shop/api/shop/user/v1/user_service_pb";
import { redacted, registryOf, toRedactedJson } from "../src/observability/redact.ts";

// The service's file: the User it returns comes from a file it imports.
const registry = registryOf([file_shop_user_v1_user_service]);
const ada = create(UserSchema, { id: "u-1", name: "Ada Lovelace", email: "ada@example.com" });

test("marked fields are redacted in a message, in a list of messages, and in optional fields", () => {
  const page = create(ListUsersResponseSchema, {
    users: [ada, { ...ada, id: "u-2" }],
    nextPageToken: "next",
    revision: 7n,
  });
  assert.deepEqual(toRedactedJson(ListUsersResponseSchema, page, registry), {
    users: [
      { id: "u-1", name: redacted, email: redacted },
      { id: "u-2", name: redacted, email: redacted },
    ],
    nextPageToken: "next",
    revision: "7",
  });
  const update = create(UpdateUserRequestSchema, { id: "u-1", version: 2n, email: "new@x.io" });
  assert.deepEqual(toRedactedJson(UpdateUserRequestSchema, update, registry), {
    id: "u-1",
    version: "2",
    email: redacted,
  });
});

test("an Any is redacted by the type it holds; one of a type the registry lacks is not written at all", () => {
  const packed = anyPack(UserSchema, ada);
  assert.deepEqual(toRedactedJson(AnySchema, packed, registry), {
    "@type": "type.googleapis.com/shop.user.v1.User",
    id: "u-1",
    name: redacted,
    email: redacted,
  });
  // protobuf-es refuses to write an Any it cannot resolve (the tap shows a note in its place).
  const unknownType = create(AnySchema, {
    typeUrl: "type.googleapis.com/elsewhere.v1.Secret",
    value: new Uint8Array([10, 3, 97, 98, 99]),
  });
  assert.throws(() => toRedactedJson(AnySchema, unknownType, registry));
});

test("a plain object a handler answered with (a message's init shape) is redacted as the message would be", () => {
  const plain = { users: [{ id: "u-3", name: "Grace Hopper", email: "grace@example.com" }] };
  assert.deepEqual(toRedactedJson(ListUsersResponseSchema, plain, registry), {
    users: [{ id: "u-3", name: redacted, email: redacted }],
  });
});
