import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase } from "@shop/testing";
import { usersService } from "../src/app.ts";

let database: TestDatabase;
let service: RunningService;
before(async () => {
  database = await createTestDatabase();
  service = await startTestService(usersService, database.url);
});
after(async () => {
  await service.stop(100);
  await database.drop();
});

test("a created user is returned by GetUser", async () => {
  const client = createClient(UserService, createGrpcTransport({ baseUrl: service.server.url }));
  const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
  const got = await client.getUser({ id: user?.id ?? "" });
  assert.equal(got.user?.email, "ada@example.com");
});
