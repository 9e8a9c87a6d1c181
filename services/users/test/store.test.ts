// The users store over a real PostgreSQL, through the service's own gRPC server: what the SQL of
// each method returns, and how ListUsers copes with 100,000 users.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Client, Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import { type ListUsersResponse, UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService } from "@shop/mesh";
import { createTestDatabase, expectCode, startTestService, type TestDatabase } from "@shop/testing";
import postgres from "postgres";
import { usersService } from "../src/app.ts";

let database: TestDatabase;
let service: RunningService;
let client: Client<typeof UserService>;
before(async () => {
  database = await createTestDatabase();
  service = await startTestService(usersService, database.url);
  client = createClient(UserService, createGrpcTransport({ baseUrl: service.server.url }));
});
after(async () => {
  await service.stop(100);
  await database.drop();
});

test("a created user is returned by GetUser", async () => {
  const { user } = await client.createUser({ name: "Ada", email: "ada@example.com" });
  const got = await client.getUser({ id: user?.id ?? "" });
  assert.equal(got.user?.email, "ada@example.com");
});

interface Listing {
  query?: string;
  newestFirst?: boolean;
}

/** Every page of `listing` (pages of `pageSize`), following next_page_token to the end. */
async function pagesOf(
  users: Client<typeof UserService>,
  listing: Listing,
  pageSize = 3,
): Promise<ListUsersResponse[]> {
  const pages: ListUsersResponse[] = [];
  let pageToken = "";
  do {
    const page = await users.listUsers({ ...listing, pageSize, pageToken });
    pages.push(page);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return pages;
}

/** The users of every page of `listing`, in the order listed. */
async function listAll(listing: Listing = {}): Promise<User[]> {
  return (await pagesOf(client, listing)).flatMap((page) => page.users);
}

/** What `query` means: the name or the email contains it, whatever the case of either. */
function matches(user: User, query: string): boolean {
  const needle = query.toLowerCase();
  return user.name.toLowerCase().includes(needle) || user.email.toLowerCase().includes(needle);
}

/** Creates the users and returns their ids, in creation order. */
async function create(users: { name: string; email: string }[]): Promise<string[]> {
  const ids: string[] = [];
  for (const user of users) ids.push((await client.createUser(user)).user?.id ?? "");
  return ids;
}

const ids = (users: User[]) => users.map((user) => user.id);

describe("ListUsers over PostgreSQL", () => {
  test("query lists the users whose name or email contains it, ignoring case, and total_size counts them", async () => {
    const tag = randomUUID().slice(0, 8);
    const [inBoth, inEmail, inName, inNeither] = await create([
      { name: `Ada ${tag}`, email: `ada-${tag}@example.com` },
      { name: "Grace Hopper", email: `Grace.${tag.toUpperCase()}@example.com` },
      { name: `ALAN ${tag.toUpperCase()}`, email: `alan-${randomUUID()}@example.com` },
      { name: "Edsger", email: `edsger-${randomUUID()}@example.com` },
    ]);
    const everyone = await listAll();
    for (const query of [tag, tag.toUpperCase(), `a ${tag}`, "HOPPER", "ace.", "DSGER"]) {
      const expected = everyone.filter((user) => matches(user, query));
      const pages = await pagesOf(client, { query });
      assert.deepEqual(ids(pages.flatMap((page) => page.users)), ids(expected), query);
      for (const page of pages) assert.equal(page.totalSize, expected.length, query);
    }
    assert.deepEqual(ids(await listAll({ query: tag.toUpperCase() })), [inBoth, inEmail, inName]);
    assert.ok(!ids(await listAll({ query: tag })).includes(inNeither ?? ""));
  });

  test("%, _ and \\ in a query match themselves, not as LIKE patterns", async () => {
    const tag = randomUUID().slice(0, 8);
    const [percent, underscore, backslash] = await create([
      { name: `50% off ${tag}`, email: `percent-${tag}@example.com` },
      { name: `snake_case ${tag}`, email: `underscore-${tag}@example.com` },
      { name: `back\\slash ${tag}`, email: `backslash-${tag}@example.com` },
      // What each query would also find if its character were a pattern.
      { name: `50 off ${tag}`, email: `fifty-${tag}@example.com` },
      { name: `snakeXcase ${tag}`, email: `snakex-${tag}@example.com` },
      { name: `backslash ${tag}`, email: `noslash-${tag}@example.com` },
    ]);
    const everyone = await listAll();
    for (const [query, only] of [
      ["50%", percent],
      ["e_c", underscore],
      ["k\\s", backslash],
      ["%", percent],
      ["_", underscore],
      // Nothing but pattern characters: a text like any other, which only the "%" user holds part of.
      ["%_%", undefined],
    ] as const) {
      const listed = await client.listUsers({ query, pageSize: 1000 });
      assert.deepEqual(
        ids(listed.users),
        ids(everyone.filter((user) => matches(user, query))),
        query,
      );
      if (only !== undefined)
        assert.ok(ids(listed.users).includes(only), `${query} finds its user`);
      assert.equal(listed.totalSize, listed.users.length, query);
    }
  });

  test("newest_first pages through every matching user once, newest first, with the same query", async () => {
    const tag = randomUUID().slice(0, 8);
    const tagged = await create(
      Array.from({ length: 8 }, (_, i) => ({
        name: `Paged ${i} ${tag}`,
        email: `paged-${i}-${randomUUID()}@example.com`,
      })),
    );
    await create([{ name: "Not paged", email: `not-paged-${randomUUID()}@example.com` }]);
    for (const pageSize of [1, 3, 8, 1000]) {
      const newest = await pagesOf(client, { query: tag, newestFirst: true }, pageSize);
      assert.equal(newest.length, Math.max(1, Math.ceil(tagged.length / pageSize)));
      assert.deepEqual(ids(newest.flatMap((page) => page.users)), [...tagged].reverse());
      for (const page of newest) assert.equal(page.totalSize, tagged.length);
      const oldest = await pagesOf(client, { query: tag }, pageSize);
      assert.deepEqual(ids(oldest.flatMap((page) => page.users)), tagged);
    }
    // Without a query: every user, newest first, the reverse of creation order.
    const everyone = await listAll();
    const newestFirst = await listAll({ newestFirst: true });
    assert.deepEqual(ids(newestFirst), ids(everyone).reverse());
  });

  test("a page_token reused with another query or order is invalid_argument", async () => {
    const tag = randomUUID().slice(0, 8);
    await create(
      Array.from({ length: 3 }, (_, i) => ({
        name: `Token ${i} ${tag}`,
        email: `token-${i}-${randomUUID()}@example.com`,
      })),
    );
    const first = await client.listUsers({ query: tag, pageSize: 1 });
    for (const other of [{ query: `${tag}x` }, { query: "" }, { query: tag, newestFirst: true }]) {
      await expectCode(
        client.listUsers({ ...other, pageSize: 1, pageToken: first.nextPageToken }),
        Code.InvalidArgument,
      );
    }
  });

  test("a query with a NUL character, which no stored text holds, lists nobody", async () => {
    const listed = await client.listUsers({ query: "a\u0000b" });
    assert.deepEqual(listed.users, []);
    assert.equal(listed.totalSize, 0);
  });
});

describe("ListUsers over 100,000 users", () => {
  const count = 100_000;
  const firstNames = ["Ada", "Grace", "Alan", "Edsger", "Barbara"];
  /** The user the seed makes of its `n`th row (from 1), oldest first. */
  const seeded = (n: number) => ({
    name: `${firstNames[n % firstNames.length]} Seed ${n}`,
    email: `seed-${n}@example.com`,
  });
  const all = Array.from({ length: count }, (_, i) => seeded(i + 1));

  let big: TestDatabase;
  let bigService: RunningService;
  let users: Client<typeof UserService>;
  before(async () => {
    big = await createTestDatabase();
    bigService = await startTestService(usersService, big.url);
    users = createClient(UserService, createGrpcTransport({ baseUrl: bigService.server.url }));
    const sql = postgres(big.url, { max: 1, onnotice: () => {} });
    try {
      // The same users as `seeded`, made in one statement rather than 100,000 calls.
      await sql`
        insert into users.users (name, email)
        select (${firstNames}::text[])[1 + n % ${firstNames.length}] || ' Seed ' || n,
               'seed-' || n || '@example.com'
        from generate_series(1, ${count}) as n
        order by n`;
      // As autovacuum leaves a table in service: statistics, and the trigram indexes' pending
      // entries merged.
      await sql`vacuum analyze users.users`;
    } finally {
      await sql.end();
    }
  });
  after(async () => {
    await bigService?.stop(100);
    await big?.drop();
  });

  /** Runs `call` five times and reports the median time as a diagnostic; returns its answer. */
  async function timed<T>(
    report: (message: string) => void,
    label: string,
    call: () => Promise<T>,
  ): Promise<T> {
    const times: number[] = [];
    let answer: T | undefined;
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      answer = await call();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    report(
      `${label}: ${times[2]?.toFixed(1)} ms (median of 5, ${times.map((time) => time.toFixed(1)).join(", ")})`,
    );
    return answer as T;
  }

  const names = (page: ListUsersResponse) => page.users.map((user) => user.name);
  const newestFirst = [...all].reverse();

  test("the first page newest first, a page 50,000 users on, and query pages, with total_size", async (t) => {
    const report = (message: string) => t.diagnostic(message);
    const first = await timed(report, "first page of 50, newest first", () =>
      users.listUsers({ newestFirst: true, pageSize: 50 }),
    );
    assert.deepEqual(
      names(first),
      newestFirst.slice(0, 50).map((user) => user.name),
    );
    assert.equal(first.totalSize, count);

    let pageToken = "";
    for (let listed = 0; listed < count / 2; listed += 1000) {
      pageToken = (await users.listUsers({ newestFirst: true, pageSize: 1000, pageToken }))
        .nextPageToken;
    }
    const later = await timed(report, "page of 50 after 50,000 users, newest first", () =>
      users.listUsers({ newestFirst: true, pageSize: 50, pageToken }),
    );
    assert.deepEqual(
      names(later),
      newestFirst.slice(count / 2, count / 2 + 50).map((user) => user.name),
    );

    for (const query of ["grace", "SEED-4242@", "seed 9999", "zz", "a"]) {
      const expected = newestFirst.filter(
        (user) =>
          user.name.toLowerCase().includes(query.toLowerCase()) ||
          user.email.toLowerCase().includes(query.toLowerCase()),
      );
      const page = await timed(
        report,
        `first page of 50 of query "${query}" newest first (${expected.length} match)`,
        () => users.listUsers({ query, newestFirst: true, pageSize: 50 }),
      );
      assert.deepEqual(
        names(page),
        expected.slice(0, 50).map((user) => user.name),
      );
      assert.equal(page.totalSize, expected.length);
      if (page.nextPageToken === "") continue;
      const next = await timed(report, `second page of query "${query}"`, () =>
        users.listUsers({ query, newestFirst: true, pageSize: 50, pageToken: page.nextPageToken }),
      );
      assert.deepEqual(
        names(next),
        expected.slice(50, 100).map((user) => user.name),
      );
      assert.equal(next.totalSize, expected.length);
    }
  });
});
