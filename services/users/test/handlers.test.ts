// UserService's handlers through an in-memory Connect transport: the codes and messages a client
// sees for each domain outcome, with the mesh's error and validation interceptors in front as in
// production.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { EventType, UserStatus } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createContractValidator,
  createErrorInterceptor,
  createLogger,
  createValidationInterceptor,
} from "@shop/mesh";
import { expectCode } from "@shop/testing";
import type { UserRepository } from "../src/domain/user.ts";
import { userRoutes } from "../src/transport/routes.ts";
import { createFakeUserRepository, type FakeUserRepository } from "./fake-user-repository.ts";

function setup(): { repo: FakeUserRepository; client: ReturnType<typeof clientOf> } {
  const repo = createFakeUserRepository();
  return { repo, client: clientOf(repo) };
}

function clientOf(repo: FakeUserRepository) {
  const transport = createRouterTransport(userRoutes(repo), {
    router: {
      interceptors: [
        createErrorInterceptor(createLogger("users-test", "silent")),
        createValidationInterceptor(createContractValidator([UserService.file])),
      ],
    },
  });
  return createClient(UserService, transport);
}

async function* requests<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

describe("CreateUser", () => {
  test("returns the new user with an id, version 1, ACTIVE and timestamps", async () => {
    const { client } = setup();
    const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
    assert.match(user?.id ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(user?.version, 1n);
    assert.equal(user?.status, UserStatus.ACTIVE);
    assert.ok(user?.createTime && user.updateTime);
  });

  test("an empty name is invalid_argument", async () => {
    const { client, repo } = setup();
    const error = await expectCode(
      client.createUser({ name: "", email: "ada@example.com" }),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /name/);
    assert.equal(repo.all().length, 0);
  });

  test("a malformed email is invalid_argument", async () => {
    const { client } = setup();
    const error = await expectCode(
      client.createUser({ name: "Ada", email: "ada.example.com" }),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /email/);
  });

  test("a taken email is already_exists", async () => {
    const { client } = setup();
    await client.createUser({ name: "Ada", email: "ada@example.com" });
    await expectCode(
      client.createUser({ name: "Ada Again", email: "Ada@Example.com" }),
      Code.AlreadyExists,
    );
  });
});

describe("GetUser", () => {
  test("returns the user that CreateUser made", async () => {
    const { client } = setup();
    const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
    const got = await client.getUser({ id: user?.id ?? "" });
    assert.equal(got.user?.email, "ada@example.com");
  });

  test("an unknown id is not_found", async () => {
    const { client } = setup();
    await expectCode(client.getUser({ id: randomUUID() }), Code.NotFound);
  });

  for (const id of ["", "no-such-id"]) {
    test(`${JSON.stringify(id)}, which is no UUID, is invalid_argument`, async () => {
      const { client } = setup();
      await expectCode(client.getUser({ id }), Code.InvalidArgument);
    });
  }
});

describe("ListUsers", () => {
  test("pages through the users with the token it returns", async () => {
    const { client } = setup();
    for (const name of ["a", "b", "c"]) {
      await client.createUser({ name, email: `${name}@example.com` });
    }
    const first = await client.listUsers({ pageSize: 2 });
    assert.deepEqual(
      first.users.map((user) => user.name),
      ["a", "b"],
    );
    assert.notEqual(first.nextPageToken, "");
    assert.equal(first.revision, 3n);
    const second = await client.listUsers({ pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(
      second.users.map((user) => user.name),
      ["c"],
    );
    assert.equal(second.nextPageToken, "");
  });

  for (const pageToken of [
    "garbage",
    "eyJhZnRlciI6Ij8ifQ",
    Buffer.from("{}").toString("base64url"),
  ]) {
    test(`page_token ${JSON.stringify(pageToken)} is invalid_argument`, async () => {
      const { client } = setup();
      await expectCode(client.listUsers({ pageToken }), Code.InvalidArgument);
    });
  }

  test("a negative page_size is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.listUsers({ pageSize: -1 }), Code.InvalidArgument);
  });

  test("a query of 200 characters is listed, one of 201 is invalid_argument naming query", async () => {
    const { client } = setup();
    const longest = "x".repeat(200);
    assert.equal((await client.listUsers({ query: longest })).totalSize, 0);
    const error = await expectCode(
      client.listUsers({ query: `${longest}x` }),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /query/);
  });

  test("newest_first pages from the newest user to the oldest, each once, with total_size on every page", async () => {
    const { client, repo } = setup();
    for (const name of ["Ann", "Bo", "Cy", "Di", "Ed"]) {
      await client.createUser({ name, email: `${name.toLowerCase()}@example.com` });
    }
    const pages = await pagesOf(client, { newestFirst: true, pageSize: 2 });
    assert.deepEqual(
      pages.flatMap((page) => page.users.map((user) => user.id)),
      repo
        .all()
        .map((user) => user.id)
        .reverse(),
    );
    assert.ok(pages.length > 1);
    for (const page of pages) assert.equal(page.totalSize, repo.all().length);
  });

  // A token stands for a place in one list: in another one (other users, or another order) it
  // would skip or repeat users without anyone noticing.
  const filters = [
    { query: "", newestFirst: false },
    { query: "", newestFirst: true },
    { query: "example", newestFirst: false },
    { query: "example", newestFirst: true },
  ];
  for (const given of filters) {
    for (const reused of filters.filter((other) => other !== given)) {
      test(`a page_token of ${JSON.stringify(given)} sent with ${JSON.stringify(reused)} is invalid_argument`, async () => {
        const { client } = setup();
        for (const name of ["a", "b", "c"]) {
          await client.createUser({ name, email: `${name}@example.com` });
        }
        const first = await client.listUsers({ ...given, pageSize: 1 });
        assert.notEqual(first.nextPageToken, "");
        const error = await expectCode(
          client.listUsers({ ...reused, pageSize: 1, pageToken: first.nextPageToken }),
          Code.InvalidArgument,
        );
        assert.match(error.rawMessage, /page_token .*other filters.*first page/);
        // The same token with the filters that made it still gives the next page.
        const second = await client.listUsers({
          ...given,
          pageSize: 1,
          pageToken: first.nextPageToken,
        });
        assert.equal(second.users.length, 1);
      });
    }
  }

  test("a page_token made without filters still works with another page_size", async () => {
    const { client } = setup();
    for (const name of ["a", "b", "c"]) {
      await client.createUser({ name, email: `${name}@example.com` });
    }
    const first = await client.listUsers({ pageSize: 1 });
    const rest = await client.listUsers({ pageSize: 10, pageToken: first.nextPageToken });
    assert.deepEqual(
      rest.users.map((user) => user.name),
      ["b", "c"],
    );
  });
});

/** Every page of the listing `request` asks for, following next_page_token to the end. */
async function pagesOf(
  client: ReturnType<typeof clientOf>,
  request: { query?: string; newestFirst?: boolean; pageSize: number },
) {
  const pages = [];
  let pageToken = "";
  do {
    const page = await client.listUsers({ ...request, pageToken });
    pages.push(page);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return pages;
}

describe("UpdateUser", () => {
  test("a stale version is aborted and the message names the current version", async () => {
    const { client } = setup();
    const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
    const id = user?.id ?? "";
    const updated = await client.updateUser({ id, version: 1n, name: "Ada L." });
    assert.equal(updated.user?.version, 2n);
    const error = await expectCode(
      client.updateUser({ id, version: 1n, name: "Stale" }),
      Code.Aborted,
    );
    assert.match(error.rawMessage, /version 2\b/);
    const got = await client.getUser({ id });
    assert.equal(got.user?.name, "Ada L.");
  });

  test("an unknown user is not_found", async () => {
    const { client } = setup();
    await expectCode(
      client.updateUser({ id: randomUUID(), version: 1n, name: "X" }),
      Code.NotFound,
    );
  });

  test("an invalid patch is invalid_argument", async () => {
    const { client } = setup();
    const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
    const id = user?.id ?? "";
    await expectCode(client.updateUser({ id, version: 1n, email: "nope" }), Code.InvalidArgument);
    await expectCode(client.updateUser({ id, version: 0n, name: "X" }), Code.InvalidArgument);
    await expectCode(
      client.updateUser({ id, version: 1n, status: UserStatus.UNSPECIFIED }),
      Code.InvalidArgument,
    );
  });

  test("can suspend a user", async () => {
    const { client } = setup();
    const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
    const updated = await client.updateUser({
      id: user?.id ?? "",
      version: 1n,
      status: UserStatus.SUSPENDED,
    });
    assert.equal(updated.user?.status, UserStatus.SUSPENDED);
    assert.equal(updated.user?.name, "Ada");
  });
});

describe("BatchCreateUsers", () => {
  test("a taken email in the third message is already_exists naming index 2", async () => {
    const { client, repo } = setup();
    await client.createUser({ name: "Early", email: "c@example.com" });
    const error = await expectCode(
      client.batchCreateUsers(
        requests(["a", "b", "c", "d"].map((name) => ({ name, email: `${name}@example.com` }))),
      ),
      Code.AlreadyExists,
    );
    assert.match(error.rawMessage, /\b2\b/);
    assert.equal(repo.all().length, 1);
  });

  test("an invalid message is invalid_argument naming its index", async () => {
    const { client } = setup();
    const error = await expectCode(
      client.batchCreateUsers(
        requests([
          { name: "a", email: "a@example.com" },
          { name: "", email: "b@example.com" },
        ]),
      ),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /\b1\b/);
  });
});

describe("WatchUsers", () => {
  test("a negative start_revision is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(
      (async () => {
        for await (const _ of client.watchUsers({ startRevision: -5n })) break;
      })(),
      Code.InvalidArgument,
    );
  });

  test("streams snapshot events, then created events", async () => {
    const { client } = setup();
    await client.createUser({ name: "a", email: "a@example.com" });
    const controller = new AbortController();
    const seen: [EventType, string][] = [];
    for await (const res of client.watchUsers({}, { signal: controller.signal })) {
      for (const event of res.events) seen.push([event.type, event.user?.name ?? ""]);
      if (seen.length === 1) await client.createUser({ name: "b", email: "b@example.com" });
      if (seen.length === 2) break;
    }
    controller.abort();
    assert.deepEqual(seen, [
      [EventType.SNAPSHOT, "a"],
      [EventType.CREATED, "b"],
    ]);
  });
});

describe("unexpected errors", () => {
  const secret = 'relation "users"."users" does not exist at /srv/app/store.ts:42 password=hunter2';
  const calls: [
    string,
    keyof UserRepository,
    (client: ReturnType<typeof clientOf>) => Promise<unknown>,
  ][] = [
    [
      "CreateUser",
      "insert",
      (client) => client.createUser({ name: "Ada", email: "ada@example.com" }),
    ],
    ["GetUser", "get", (client) => client.getUser({ id: randomUUID() })],
    ["ListUsers", "list", (client) => client.listUsers({})],
    [
      "BatchCreateUsers",
      "insert",
      (client) => client.batchCreateUsers(requests([{ name: "a", email: "a@example.com" }])),
    ],
    [
      "WatchUsers",
      "snapshotPage",
      async (client) => {
        for await (const _ of client.watchUsers({})) break;
      },
    ],
  ];
  for (const [rpc, method, call] of calls) {
    test(`${rpc}: a repository failure is internal with a generic message`, async () => {
      const repo = createFakeUserRepository();
      const error = new Error(secret);
      Object.assign(error, { code: "42P01" });
      repo.failNext(method, error);
      const seen = await expectCode(call(clientOf(repo)), Code.Internal);
      assert.equal(seen.rawMessage, "internal error");
      const everything = JSON.stringify({
        message: seen.message,
        details: seen.details,
        metadata: [...seen.metadata],
        cause: String(seen.cause ?? ""),
      });
      for (const fragment of ["relation", "/srv/app", "hunter2", "42P01", "store.ts"]) {
        assert.ok(!everything.includes(fragment), `the client saw "${fragment}": ${everything}`);
      }
    });
  }
});

test("a database that cannot be reached is unavailable, without its address", async () => {
  const repo = createFakeUserRepository();
  const refused = Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:5432"), {
    code: "ECONNREFUSED",
  });
  repo.failNext("get", refused);
  const error = await expectCode(clientOf(repo).getUser({ id: randomUUID() }), Code.Unavailable);
  assert.doesNotMatch(error.message, /10\.1\.2\.3|ECONNREFUSED/);
});
