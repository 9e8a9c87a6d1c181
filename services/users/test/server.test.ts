// The real users service on a free port, over a real PostgreSQL, driven the way its users drive it:
// plain HTTP with Connect JSON, and the Connect, gRPC and gRPC-web clients of connect-node.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { EventType, type User, type UserEvent } from "@shop/api/shop/user/v1/user_pb";
import { UserService, type WatchUsersResponse } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService } from "@shop/mesh";
import {
  createTestDatabase,
  expectCode,
  readMetric,
  startTestService,
  type TestDatabase,
  waitFor,
} from "@shop/testing";
import { usersService } from "../src/app.ts";

let database: TestDatabase;
let service: RunningService;
let baseUrl: string;
let client: Client<typeof UserService>;
before(async () => {
  database = await createTestDatabase();
  service = await startTestService(usersService, database.url);
  baseUrl = service.server.url;
  client = createClient(UserService, createGrpcTransport({ baseUrl }));
});
after(async () => {
  await service.stop(100);
  await database.drop();
});

let counter = 0;
/** An email no other test of this file uses. */
const freshEmail = (label = "user") =>
  `${label}-${++counter}-${randomUUID().slice(0, 8)}@example.com`;

async function* requests<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

/** Every user, through as many ListUsers pages as it takes, and the revision of the first page. */
async function listAll(): Promise<{ emails: string[]; users: User[]; revision: bigint }> {
  const users: User[] = [];
  let pageToken = "";
  let revision: bigint | undefined;
  do {
    const page = await client.listUsers({ pageSize: 100, pageToken });
    revision ??= page.revision;
    users.push(...page.users);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return { emails: users.map((user) => user.email), users, revision: revision ?? 0n };
}

const protocols: [string, (baseUrl: string) => Transport][] = [
  [
    "connect (HTTP/1.1, JSON)",
    (url) => createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: false }),
  ],
  ["grpc (HTTP/2)", (url) => createGrpcTransport({ baseUrl: url })],
  ["grpc-web (HTTP/1.1)", (url) => createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" })],
];

describe("plain HTTP with Connect JSON", () => {
  const rpc = (method: string, body: unknown) =>
    fetch(`${baseUrl}/shop.user.v1.UserService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify(body),
    });
  const getUrl = (method: string, message: unknown) =>
    `${baseUrl}/shop.user.v1.UserService/${method}?encoding=json&message=${encodeURIComponent(JSON.stringify(message))}&connect=v1`;

  test("POST CreateUser, then GET GetUser with the message in the query", async () => {
    const email = freshEmail("fetch");
    const created = await rpc("CreateUser", { name: "Fetch", email });
    assert.equal(created.status, 200);
    assert.match(created.headers.get("content-type") ?? "", /^application\/json/);
    const { user } = (await created.json()) as { user: Record<string, unknown> };
    assert.equal(user.email, email);
    assert.equal(user.version, "1", "int64 travels as a JSON string");
    assert.equal(user.status, "USER_STATUS_ACTIVE");
    assert.ok(!Number.isNaN(Date.parse(String(user.createTime))), "createTime is RFC 3339");

    const got = await fetch(getUrl("GetUser", { id: user.id }));
    assert.equal(got.status, 200);
    assert.deepEqual(((await got.json()) as { user: unknown }).user, user);
  });

  test("GET is refused for CreateUser, which has side effects", async () => {
    const email = freshEmail("get");
    const response = await fetch(getUrl("CreateUser", { name: "Get", email }));
    assert.ok(response.status >= 400, `status ${response.status}`);
    await response.body?.cancel();
    assert.ok(!(await listAll()).emails.includes(email));
  });

  const errors: [string, () => Promise<Response>, number, string][] = [
    ["unknown user", () => fetch(getUrl("GetUser", { id: randomUUID() })), 404, "not_found"],
    [
      "empty name",
      () => rpc("CreateUser", { name: "", email: freshEmail() }),
      400,
      "invalid_argument",
    ],
    ["bad email", () => rpc("CreateUser", { name: "X", email: "nope" }), 400, "invalid_argument"],
    ["negative page_size", () => rpc("ListUsers", { pageSize: -1 }), 400, "invalid_argument"],
    ["bad page_token", () => rpc("ListUsers", { pageToken: "%%%" }), 400, "invalid_argument"],
    [
      "query of 201 characters",
      () => rpc("ListUsers", { query: "x".repeat(201) }),
      400,
      "invalid_argument",
    ],
    [
      "malformed JSON",
      () =>
        fetch(`${baseUrl}/shop.user.v1.UserService/CreateUser`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"name": "x", ',
        }),
      400,
      "invalid_argument",
    ],
  ];
  for (const [what, call, status, code] of errors) {
    test(`${what}: HTTP ${status} with {"code":"${code}"}`, async () => {
      const response = await call();
      assert.equal(response.status, status);
      const body = (await response.json()) as { code?: string; message?: string };
      assert.equal(body.code, code);
      assert.equal(typeof body.message, "string");
    });
  }

  test("a taken email: HTTP 409 already_exists", async () => {
    const email = freshEmail("dup");
    assert.equal((await rpc("CreateUser", { name: "A", email })).status, 200);
    const response = await rpc("CreateUser", { name: "B", email: email.toUpperCase() });
    assert.equal(response.status, 409);
    assert.equal(((await response.json()) as { code: string }).code, "already_exists");
  });

  test("a method that does not exist: HTTP 404", async () => {
    const response = await rpc("Nope", {});
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });

  test("the service still answers after the bad requests above", async () => {
    const response = await rpc("ListUsers", {});
    assert.equal(response.status, 200);
  });

  test("/healthz is 200", async () => {
    const response = await fetch(`${baseUrl}/healthz`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("/readyz is 200 with the database reachable and the migrations applied", async () => {
    const response = await fetch(`${baseUrl}/readyz`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { checks: Record<string, boolean> };
    assert.equal(body.checks.database, true);
    assert.equal(body.checks.migrations, true);
  });

  test("/metrics is Prometheus text with the RPC durations by method and code", async () => {
    await client.getUser({ id: randomUUID() }).catch(() => {});
    const response = await fetch(`${baseUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await response.text();
    assert.match(text, /^# TYPE rpc_server_duration_seconds histogram$/m);
    assert.match(
      text,
      /^rpc_server_duration_seconds_count\{[^}]*rpc_method="GetUser"[^}]*code="not_found"[^}]*\} [1-9]/m,
    );
  });
});

describe("every error code over Connect, gRPC and gRPC-web", () => {
  for (const [protocol, transportOf] of protocols) {
    describe(protocol, () => {
      let transport: Transport;
      let users: Client<typeof UserService>;
      before(() => {
        transport = transportOf(baseUrl);
        users = createClient(UserService, transport);
      });

      test("invalid_argument", async () => {
        await expectCode(users.createUser({ name: "", email: freshEmail() }), Code.InvalidArgument);
        await expectCode(users.createUser({ name: "X", email: "x@" }), Code.InvalidArgument);
      });

      test("not_found", async () => {
        const error = await expectCode(users.getUser({ id: randomUUID() }), Code.NotFound);
        assert.match(error.rawMessage, /not found/);
        // An id of another form breaks the contract's rule (a UUID): invalid_argument, never internal.
        await expectCode(users.getUser({ id: "not-a-uuid" }), Code.InvalidArgument);
        await expectCode(users.updateUser({ id: "1 or 1=1", version: 1n }), Code.InvalidArgument);
      });

      test("already_exists", async () => {
        const email = freshEmail();
        await users.createUser({ name: "X", email });
        await expectCode(users.createUser({ name: "Y", email }), Code.AlreadyExists);
      });

      test("aborted, naming the current version", async () => {
        const { user } = await users.createUser({ name: "X", email: freshEmail() });
        await users.updateUser({ id: user?.id ?? "", version: 1n, name: "Y" });
        const error = await expectCode(
          users.updateUser({ id: user?.id ?? "", version: 1n, name: "Z" }),
          Code.Aborted,
        );
        assert.match(error.rawMessage, /version 2\b/);
      });

      test("unimplemented for a method the service does not have", async () => {
        // GetUser's descriptor under another name: a well-formed request to a method that is not there.
        const nope = { ...UserService.method.getUser, name: "Nope" };
        await expectCode(
          transport.unary(nope, undefined, undefined, undefined, { id: randomUUID() }),
          Code.Unimplemented,
        );
      });
    });
  }
});

describe("ListUsers", () => {
  test("small pages walk every user once, in creation order", async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push(
        (await client.createUser({ name: `Page ${i}`, email: freshEmail("page") })).user?.email ??
          "",
      );
    }
    const all = await listAll();
    const paged: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listUsers({ pageSize: 2, pageToken });
      assert.ok(page.users.length <= 2);
      paged.push(...page.users.map((user) => user.email));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    assert.deepEqual(paged, all.emails);
    assert.deepEqual(paged.slice(-created.length), created);
  });

  test("a forged page_token is invalid_argument, not a database error", async () => {
    for (const after of ["1; drop table users", "-1", "99999999999999999999", ""]) {
      const pageToken = Buffer.from(JSON.stringify({ after })).toString("base64url");
      await expectCode(client.listUsers({ pageToken }), Code.InvalidArgument);
    }
  });
});

describe("UpdateUser optimistic concurrency", () => {
  test("an email another user has is already_exists and changes nothing", async () => {
    const taken = freshEmail("owner");
    await client.createUser({ name: "Owner", email: taken });
    const { user } = await client.createUser({ name: "Mover", email: freshEmail("mover") });
    const id = user?.id ?? "";
    await expectCode(
      client.updateUser({ id, version: 1n, email: taken.toUpperCase() }),
      Code.AlreadyExists,
    );
    const { user: stored } = await client.getUser({ id });
    assert.equal(stored?.email, user?.email);
    assert.equal(stored?.version, 1n);
  });

  test("a stale version is aborted and nothing is written", async () => {
    const { user } = await client.createUser({ name: "Original", email: freshEmail() });
    const id = user?.id ?? "";
    const first = await client.updateUser({ id, version: 1n, name: "First" });
    assert.equal(first.user?.version, 2n);
    const before = await listAll();

    await expectCode(
      client.updateUser({ id, version: 1n, name: "Stale", email: freshEmail() }),
      Code.Aborted,
    );

    const after = await listAll();
    assert.equal(after.revision, before.revision, "the failed update recorded no change");
    const { user: stored } = await client.getUser({ id });
    assert.equal(stored?.name, "First");
    assert.equal(stored?.email, user?.email);
    assert.equal(stored?.version, 2n);
  });

  test("of concurrent updates from the same version, exactly one wins", async () => {
    const { user } = await client.createUser({ name: "Race", email: freshEmail() });
    const id = user?.id ?? "";
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        client.updateUser({ id, version: 1n, name: `Racer ${i}` }),
      ),
    );
    const winners = outcomes.filter((outcome) => outcome.status === "fulfilled");
    assert.equal(winners.length, 1);
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") {
        assert.equal(ConnectError.from(outcome.reason).code, Code.Aborted);
      }
    }
    const { user: stored } = await client.getUser({ id });
    assert.equal(stored?.version, 2n);
    assert.equal(stored?.name, winners[0]?.value.user?.name);
  });
});

describe("BatchCreateUsers", () => {
  test("creates every user, in the order sent", async () => {
    const emails = [freshEmail("b"), freshEmail("b"), freshEmail("b")];
    const { users } = await client.batchCreateUsers(
      requests(emails.map((email, i) => ({ name: `Batch ${i}`, email }))),
    );
    assert.deepEqual(
      users.map((user) => user.email),
      emails,
    );
    assert.equal(new Set(users.map((user) => user.id)).size, 3);
  });

  test("a taken email in the 3rd message creates nobody and names index 2", async () => {
    const taken = freshEmail("taken");
    await client.createUser({ name: "Taken", email: taken });
    const before = await listAll();
    const batch = [freshEmail("x"), freshEmail("x"), taken.toUpperCase(), freshEmail("x")];

    const error = await expectCode(
      client.batchCreateUsers(requests(batch.map((email) => ({ name: "X", email })))),
      Code.AlreadyExists,
    );
    assert.match(error.rawMessage, /\b2\b/);
    assert.doesNotMatch(error.rawMessage, /\b[013]\b/);

    const after = await listAll();
    assert.deepEqual(after.emails, before.emails);
    assert.equal(after.revision, before.revision);
    // Nothing of the failed batch holds its emails: the same users can be created now.
    const retry = [batch[0], batch[1], batch[3]].map((email) => ({
      name: "X",
      email: email ?? "",
    }));
    assert.equal((await client.batchCreateUsers(requests(retry))).users.length, 3);
  });

  test("an invalid message is invalid_argument naming its index, and creates nobody", async () => {
    const before = await listAll();
    const error = await expectCode(
      client.batchCreateUsers(
        requests([
          { name: "A", email: freshEmail() },
          { name: "B", email: "broken" },
        ]),
      ),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /\b1\b/);
    assert.deepEqual((await listAll()).emails, before.emails);
  });
});

describe("WatchUsers", () => {
  /** Reads a watch incrementally: `until` reads on until `enough` holds, or fails after a while. */
  function reader(stream: AsyncIterable<WatchUsersResponse>) {
    const iterator = stream[Symbol.asyncIterator]();
    const events: UserEvent[] = [];
    const responses: WatchUsersResponse[] = [];
    return {
      events,
      responses,
      async until(enough: () => boolean, timeoutMs = 5_000): Promise<void> {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`no matching events after ${timeoutMs} ms (got ${events.length})`)),
            timeoutMs,
          );
        });
        try {
          while (!enough()) {
            const next = await Promise.race([iterator.next(), timeout]);
            if (next.done) assert.fail(`the watch ended early (after ${events.length} events)`);
            responses.push(next.value);
            events.push(...next.value.events);
          }
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  test("list, then watch from its revision: exactly the later users, each once, in order", async () => {
    await client.createUser({ name: "Before", email: freshEmail("before") });
    const listed = await listAll();
    assert.ok(listed.revision > 0n);

    // Created after the list but before the watch opens: the watch must still deliver them.
    const between = [freshEmail("between"), freshEmail("between")];
    for (const email of between) await client.createUser({ name: "Between", email });

    const controller = new AbortController();
    const watch = reader(
      client.watchUsers({ startRevision: listed.revision }, { signal: controller.signal }),
    );
    const afterwards = freshEmail("after");
    const marker = freshEmail("marker");
    await client.createUser({ name: "After", email: afterwards });
    const { user: markerUser } = await client.createUser({ name: "Marker", email: marker });
    await client.updateUser({ id: markerUser?.id ?? "", version: 1n, name: "Marked" });
    // The update of the marker is the last change: everything before it has arrived by then.
    await watch.until(() =>
      watch.events.some(
        (event) => event.type === EventType.UPDATED && event.user?.email === marker,
      ),
    );
    controller.abort();

    assert.deepEqual(
      watch.events.map((event) => [EventType[event.type], event.user?.email]),
      [
        ["CREATED", between[0]],
        ["CREATED", between[1]],
        ["CREATED", afterwards],
        ["CREATED", marker],
        ["UPDATED", marker],
      ],
    );
    const revisions = watch.events.map((event) => event.revision);
    assert.ok((revisions[0] ?? 0n) > listed.revision);
    for (let i = 1; i < revisions.length; i++) {
      assert.equal(revisions[i], (revisions[i - 1] ?? 0n) + 1n, "revisions are consecutive");
    }
    assert.equal(watch.responses.at(-1)?.revision, revisions.at(-1));
  });

  test("from 0: the existing users as SNAPSHOT first, then live changes", async () => {
    const listed = await listAll();
    assert.ok(listed.emails.length > 0);
    const controller = new AbortController();
    const watch = reader(client.watchUsers({ startRevision: 0n }, { signal: controller.signal }));
    await watch.until(() => watch.events.length >= listed.emails.length);
    const live = freshEmail("live");
    await client.createUser({ name: "Live", email: live });
    await watch.until(() => watch.events.some((event) => event.user?.email === live));
    controller.abort();

    const snapshot = watch.events.slice(0, listed.emails.length);
    assert.deepEqual(
      snapshot.map((event) => [EventType[event.type], event.user?.email, event.revision]),
      [...listed.users]
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((user) => ["SNAPSHOT", user.email, listed.revision]),
      "the snapshot is the listed state, in id order, at the listed revision",
    );
    assert.equal(watch.responses[0]?.revision, listed.revision);
    assert.deepEqual(
      watch.events
        .slice(listed.emails.length)
        .map((event) => [EventType[event.type], event.user?.email]),
      [["CREATED", live]],
    );
  });

  test("the first response arrives within 1 s when nothing changes", async () => {
    const { revision } = await listAll();
    for (const startRevision of [revision, 0n]) {
      const controller = new AbortController();
      const started = performance.now();
      const watch = reader(client.watchUsers({ startRevision }, { signal: controller.signal }));
      await watch.until(() => watch.responses.length > 0, 2_000);
      const elapsed = performance.now() - started;
      controller.abort();
      assert.ok(elapsed < 1_000, `first response after ${Math.round(elapsed)} ms`);
      assert.equal(watch.responses[0]?.revision, revision);
    }
  });

  test("a negative start_revision is invalid_argument", async () => {
    const watch = reader(client.watchUsers({ startRevision: -1n }));
    await expectCode(
      watch.until(() => false),
      Code.InvalidArgument,
    );
  });

  const watchLabels = { rpc_service: "shop.user.v1.UserService", rpc_method: "WatchUsers" };
  /** Watches the server has started and not yet finished, from its own metrics. */
  const watchesRunning = async () =>
    (await readMetric(baseUrl, "rpc_server_started_total", watchLabels)) -
    (await readMetric(baseUrl, "rpc_server_duration_seconds_count", watchLabels));

  for (const [protocol, transportOf] of protocols) {
    test(`over ${protocol}, the handler ends when the client goes away`, async () => {
      const canceled = () =>
        readMetric(baseUrl, "rpc_server_duration_seconds_count", {
          ...watchLabels,
          code: "canceled",
        });
      await waitFor(async () => (await watchesRunning()) === 0, {
        message: "watches of earlier tests are still running",
      });
      const canceledBefore = await canceled();

      const controller = new AbortController();
      const users = createClient(UserService, transportOf(baseUrl));
      const iterator = users
        .watchUsers({ startRevision: 0n }, { signal: controller.signal })
        [Symbol.asyncIterator]();
      await iterator.next();
      assert.equal(await watchesRunning(), 1, "the watch is running on the server");

      controller.abort();
      await assert.rejects(
        iterator.next(),
        (error) => ConnectError.from(error).code === Code.Canceled,
      );
      await waitFor(async () => (await watchesRunning()) === 0, {
        timeoutMs: 3_000,
        message: "the server-side WatchUsers handler kept running after the client left",
      });
      assert.equal(await canceled(), canceledBefore + 1, 'recorded with code "canceled"');
    });
  }

  test("a watch on one replica sees users created through another", async () => {
    const replica = await startTestService(usersService, database.url);
    try {
      const other = createClient(UserService, createGrpcTransport({ baseUrl: replica.server.url }));
      const { revision } = await listAll();
      const controller = new AbortController();
      const watch = reader(
        other.watchUsers({ startRevision: revision }, { signal: controller.signal }),
      );
      const email = freshEmail("replica");
      await client.createUser({ name: "Elsewhere", email });
      await watch.until(() => watch.events.some((event) => event.user?.email === email));
      controller.abort();
      assert.deepEqual(
        watch.events.map((event) => event.user?.email),
        [email],
      );
    } finally {
      await replica.stop(100);
    }
  });
});
