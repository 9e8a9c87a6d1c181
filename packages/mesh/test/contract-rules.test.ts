// The contracts and the validator share one buf.validate: the generated code imports
// @bufbuild/protovalidate's own (buf.gen.yaml maps the import), so the rules in the generated
// descriptors are read with the very extensions protovalidate reads them with, predefined rules
// included; and the runtime's validation step refuses what they forbid, before the handler.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create, getOption } from "@bufbuild/protobuf";
import { violationsToProto } from "@bufbuild/protovalidate";
import {
  field as fieldRules,
  ViolationsSchema,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import {
  file_shop_inventory_v1_inventory_service,
  InventoryService,
} from "@shop/api/shop/inventory/v1/inventory_service_pb";
import {
  CreateUserRequestSchema,
  file_shop_user_v1_user_service,
  UserService,
} from "@shop/api/shop/user/v1/user_service_pb";
import {
  contractCheck,
  createContractValidator,
  violationsOf,
} from "../src/contract/contract-rules.ts";
import { createValidationInterceptor } from "../src/interceptors/validation.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

describe("one buf.validate", () => {
  test("the contracts import protovalidate's own buf/validate/validate.proto, not a copy", () => {
    const imported = file_shop_user_v1_user_service.dependencies.find(
      (file) => file.name === "buf/validate/validate",
    );
    assert.ok(imported, "user_service.proto imports buf/validate/validate.proto");
    // The module the contracts import is the one protovalidate builds its violations from.
    assert.equal(imported, ViolationsSchema.file);
    assert.equal(violationsToProto([])[1], ViolationsSchema);
    assert.equal(
      existsSync(path.join(root, "packages/api/src/gen/buf")),
      false,
      "buf generate makes no second buf.validate",
    );
  });

  test("the generated descriptors carry the rules, read with protovalidate's extension", () => {
    const id = UserService.method.getUser.input.fields.find((field) => field.name === "id");
    assert.ok(id);
    const rules = getOption(id, fieldRules);
    assert.ok(rules.type.case === "string", "a string rule");
    assert.equal(rules.type.value.wellKnown.case, "uuid");
  });

  test("standard, predefined and message rules are all enforced", () => {
    const validator = createContractValidator([file_shop_user_v1_user_service]);
    const update = UserService.method.updateUser.input;
    const violations = violationsOf(validator, update, create(update, { id: "x", version: 0n }));
    assert.deepEqual(
      violations.map(({ field, rule }) => [field, rule]),
      [
        ["id", "string.uuid"],
        ["version", "int64.gte"],
        ["", "update_user.changes_something"],
      ],
    );
    const createRequest = create(CreateUserRequestSchema, { name: " ", email: "ada@example" });
    assert.deepEqual(
      violationsOf(validator, CreateUserRequestSchema, createRequest).map((violation) => [
        violation.field,
        violation.rule,
        violation.message,
      ]),
      [
        ["name", "string.person_name.not_blank", "must not be empty"],
        ["email", "string.email_address.format", "must be an email address like ada@example.com"],
      ],
    );
  });

  test("a repeated rule names the duplicate and a list element its index", () => {
    const validator = createContractValidator([file_shop_inventory_v1_inventory_service]);
    const check = contractCheck(
      validator,
      InventoryService.method.reserveStock.input,
      (items: { sku: string; quantity: bigint }[]) => ({ orderId: "order-1", items }),
    );
    assert.deepEqual(
      check([
        { sku: "TEA", quantity: 1n },
        { sku: "TEA", quantity: 0n },
      ]).map(({ field, path, message }) => [field, path, message]),
      [
        ["items", ["items"], "must list each sku once: TEA appears more than once"],
        ["items[1].quantity", ["items", 1, "quantity"], "must be greater than or equal to 1"],
      ],
    );
  });
});

describe("the validation interceptor", () => {
  const validator = createContractValidator([file_shop_user_v1_user_service]);
  let handled = 0;
  const client = createClient(
    UserService,
    createRouterTransport(
      (router) =>
        router.service(UserService, {
          async getUser() {
            handled++;
            return {};
          },
          async batchCreateUsers(requests) {
            for await (const _ of requests) handled++;
            return {};
          },
        }),
      { router: { interceptors: [createValidationInterceptor(validator)] } },
    ),
  );

  test("refuses a unary request before the handler, with the Violations detail", async () => {
    handled = 0;
    const error = await client.getUser({ id: "nope" }).then(
      () => assert.fail("the call succeeded"),
      (caught: unknown) => ConnectError.from(caught),
    );
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.rawMessage, "id must be a valid UUID");
    const [detail] = error.findDetails(ViolationsSchema);
    assert.equal(detail?.violations[0]?.ruleId, "string.uuid");
    assert.equal(detail?.violations[0]?.field?.elements[0]?.fieldName, "id");
    assert.equal(handled, 0);
  });

  test("checks each message of a client stream as it arrives and names the one that failed", async () => {
    handled = 0;
    async function* users() {
      yield { name: "Ada", email: "ada@example.com" };
      yield { name: "Grace", email: "grace" };
      yield { name: "Edsger", email: "edsger@example.com" };
    }
    const error = await client.batchCreateUsers(users()).then(
      () => assert.fail("the call succeeded"),
      (caught: unknown) => ConnectError.from(caught),
    );
    assert.equal(error.code, Code.InvalidArgument);
    assert.match(error.rawMessage, /^message 1 of the stream: email must be an email address/);
    assert.equal(handled, 1, "the handler got the valid first message only");
  });
});
