// A live page (one page of users listed by the service, kept live by a collection that holds only
// changes) against an in-memory UserService: paging through every user, a search, the shown rows
// following updates and deletions, new users on top of the first page or counted elsewhere, a
// change made during the list shown once, and a page listed again when the changes lost track.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient } from "@connectrpc/connect";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createLiveCollection } from "../src/lib/live-collection.ts";
import { createLivePage, type LivePage, type PageView } from "../src/lib/live-page.ts";
import { type UserFilter, userPages, userSource, usersHead } from "../src/lib/sources.ts";
import { FakeUsers, fast, until } from "./support/fake-users.ts";

const pageSize = 50;

function openPage(fake: FakeUsers, filter: UserFilter = { query: "" }) {
  const client = createClient(UserService, fake.transport());
  const changes = createLiveCollection(userSource(client), {
    ...fast,
    keep: "changes",
    head: usersHead(client),
  });
  const page = createLivePage(userPages(client), changes, filter, { pageSize, highlightMs: 200 });
  changes.start();
  page.start();
  return {
    changes,
    page,
    stop() {
      page.stop();
      changes.stop();
    },
  };
}

/** A page over `count` users, listed, its changes live. */
async function openListed(count: number) {
  const fake = new FakeUsers();
  for (let i = 0; i < count; i++) fake.create(`User ${i}`);
  const opened = openPage(fake);
  await pageUntil(opened.page, (v) => v.total === count, "listed");
  await until(opened.changes, (v) => v.status === "live", "live");
  return { fake, ...opened };
}

async function pageUntil(
  page: LivePage<User, UserFilter>,
  check: (view: PageView<User, UserFilter>) => boolean,
  message: string,
): Promise<PageView<User, UserFilter>> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const view = page.getSnapshot();
    if (!view.loading && check(view)) return view;
    if (Date.now() > deadline) {
      assert.fail(`timed out: ${message} (${view.rows.length} rows, total ${view.total})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const shown = (view: PageView<User, UserFilter>) => view.rows.map((user) => user.name);

test("pages through every user newest first, one page held at a time; the changes hold no user and watch from the current revision", async () => {
  const fake = new FakeUsers();
  const created = Array.from({ length: 1_234 }, (_, i) => fake.create(`User ${i}`));
  const { page, changes, stop } = openPage(fake);
  try {
    await until(changes, (v) => v.status === "live", "the changes are live");
    assert.equal(changes.getSnapshot().items.size, 0, "the collection holds no user");
    assert.deepEqual(fake.watchStarts, [fake.revision], "watched from the current revision");

    let view = await pageUntil(page, (v) => v.total !== undefined, "the first page");
    assert.equal(view.total, created.length);
    const seen: string[] = [];
    for (let index = 0; ; index++) {
      assert.equal(view.index, index);
      assert.ok(view.rows.length <= pageSize, "one page at most");
      seen.push(...shown(view));
      if (!view.hasNext) break;
      page.next();
      // Until the next page is listed, the view says which page its rows are from.
      assert.equal(page.getSnapshot().index, index);
      assert.ok(page.getSnapshot().loading);
      view = await pageUntil(page, (v) => v.index === index + 1, `page ${index + 2}`);
    }
    assert.deepEqual(
      seen,
      created.map((user) => user.name).reverse(),
      "every user once, newest first",
    );
    page.previous();
    view = await pageUntil(page, (v) => v.index === 23, "back one page");
    assert.equal(view.rows[0]?.name, `User ${created.length - 1 - 23 * pageSize}`);
  } finally {
    stop();
  }
});

test("the rows shown follow the changes: updated in place, deleted, a new user on top of the first page and counted on the others", async () => {
  const fake = new FakeUsers();
  const users = Array.from({ length: 120 }, (_, i) => fake.create(`User ${i}`));
  const { page, stop } = openPage(fake);
  try {
    let view = await pageUntil(page, (v) => v.total === 120, "listed");
    const newest = users.at(-1) as User;
    fake.rename(newest.id, "Renamed");
    view = await pageUntil(page, (v) => v.rows[0]?.name === "Renamed", "the rename shows");
    assert.ok(view.highlighted.has(newest.id), "highlighted");
    fake.delete(users.at(-2)?.id ?? "");
    view = await pageUntil(page, (v) => v.total === 119, "the deletion shows");
    assert.equal(view.rows.length, pageSize - 1);
    assert.ok(!shown(view).includes("User 118"));

    fake.create("Newcomer");
    view = await pageUntil(page, (v) => v.rows[0]?.name === "Newcomer", "the new user on top");
    assert.equal(view.total, 120);
    assert.equal(view.unseen, 0);

    page.next();
    view = await pageUntil(page, (v) => v.index === 1, "the second page");
    const second = shown(view);
    fake.create("Later");
    fake.rename(users[0]?.id ?? "", "Oldest, renamed");
    view = await pageUntil(page, (v) => v.unseen === 1, "counted as unseen");
    assert.deepEqual(shown(view), second, "the second page's rows stay where they are");
    assert.equal(view.total, 121);
    page.refresh();
    view = await pageUntil(page, (v) => v.index === 0 && v.unseen === 0, "back to the newest");
    assert.deepEqual(shown(view).slice(0, 2), ["Later", "Newcomer"]);
  } finally {
    stop();
  }
});

test("a search lists the users whose name or email contains the text; a new user joins it only when it matches", async () => {
  const fake = new FakeUsers();
  for (let i = 0; i < 300; i++) fake.create(i % 3 === 0 ? `Ada ${i}` : `Bob ${i}`);
  const { page, stop } = openPage(fake);
  try {
    await pageUntil(page, (v) => v.total === 300, "everyone");
    page.show({ query: "ADA" });
    let view = await pageUntil(page, (v) => v.filter.query === "ADA", "the search");
    assert.equal(view.total, 100);
    assert.ok(shown(view).every((name) => name.startsWith("Ada")));
    fake.create("Bob the newest");
    fake.create("Adam");
    view = await pageUntil(page, (v) => v.rows[0]?.name === "Adam", "a match joins");
    assert.equal(view.total, 101, "the other is not counted");
    assert.ok(!shown(view).includes("Bob the newest"));
  } finally {
    stop();
  }
});

test("a change made while the page is listed shows once, whether the list or the watch brought it", async () => {
  const { fake, page, stop } = await openListed(10);
  try {
    let during: User | undefined;
    fake.afterFirstPage = () => {
      during = fake.create("During");
    };
    page.refresh();
    const view = await pageUntil(
      page,
      (v) => v.rows.some((user) => user.id === during?.id),
      "the user created during the list",
    );
    assert.equal(view.rows.filter((user) => user.id === during?.id).length, 1, "once");
    assert.equal(view.total, 11);
    fake.create("After");
    const after = await pageUntil(page, (v) => v.rows[0]?.name === "After", "the next one");
    assert.equal(after.rows.filter((user) => user.name === "During").length, 1, "still once");
  } finally {
    stop();
  }
});

test("when the changes lose track (out_of_range), the page is listed again", async () => {
  const { fake, page, changes, stop } = await openListed(10);
  try {
    fake.down = true;
    fake.dropStreams();
    await until(changes, (v) => v.status !== "live", "down");
    fake.create("Missed");
    fake.oldestResumable = fake.revision + 1n;
    const lists = fake.lists;
    fake.down = false;
    changes.retryNow();
    const view = await pageUntil(page, (v) => v.rows[0]?.name === "Missed", "listed again");
    assert.equal(view.total, 11);
    assert.ok(fake.lists >= lists + 2, "the current revision and the page were listed");
  } finally {
    stop();
  }
});
