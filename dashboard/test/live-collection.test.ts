// The dashboard's live collection against an in-memory UserService (createRouterTransport): the
// snapshot, live changes, resuming after a drop without losing or doubling a change, out_of_range
// and a broken-off snapshot leading to a fresh list, and a silent connection being replaced.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import type { CollectionView } from "../src/lib/live-collection.ts";
import { FakeUsers, fast, names, open, until } from "./support/fake-users.ts";

const logged = (view: CollectionView<User>) =>
  view.activity.map((entry) => `${entry.kind} ${entry.item.name}`).sort();

test("shows the current state, then each live change once, highlighted for a moment", async () => {
  const fake = new FakeUsers();
  fake.create("Ada");
  fake.create("Grace");
  fake.create("Edsger");
  const users = open(fake);
  try {
    let view = await until(users, (v) => v.loaded && v.status === "live", "loaded");
    assert.deepEqual(names(view), ["Ada", "Edsger", "Grace"]);
    assert.equal(view.highlighted.size, 0, "the first snapshot is not highlighted");
    assert.deepEqual(view.activity, [], "the first snapshot is not a change");

    const alan = fake.create("Alan");
    view = await until(users, (v) => v.items.has(alan.id), "Alan appears");
    assert.ok(view.highlighted.has(alan.id), "a new row is highlighted");
    assert.deepEqual(logged(view), ["created Alan"]);
    assert.equal(view.revision, fake.revision);
    await until(users, (v) => !v.highlighted.has(alan.id), "the highlight fades");
  } finally {
    users.stop();
  }
});

test("after a drop it reconnects with backoff and resumes from its last revision: nothing missed or doubled", async () => {
  const fake = new FakeUsers();
  fake.create("Ada");
  const users = open(fake);
  try {
    await until(users, (v) => v.status === "live", "live");
    const seen = users.getSnapshot().revision;
    fake.down = true;
    fake.dropStreams();
    await until(users, (v) => v.status === "reconnecting" || v.status === "offline", "noticed");
    const offline = await until(users, (v) => v.status === "offline", "offline");
    assert.equal(offline.error?.code, "unavailable");
    assert.ok(offline.retryAt !== undefined, "says when it tries next");
    const whileDown = ["Bea", "Cy", "Dee"].map((name) => fake.create(name));
    fake.delete("user-1");
    fake.down = false;
    users.retryNow();
    const view = await until(
      users,
      (v) => v.status === "live" && whileDown.every((u) => v.items.has(u.id)),
      "resumed with the changes made while down",
    );
    assert.deepEqual(names(view), ["Bea", "Cy", "Dee"], "the deleted user is gone");
    assert.deepEqual(logged(view), ["created Bea", "created Cy", "created Dee", "deleted Ada"]);
    assert.equal(fake.watchStarts.at(-1), seen, "the watch resumed from the last revision seen");
    assert.equal(fake.lists, 0, "no list was needed");
  } finally {
    users.stop();
  }
});

test("opened on an empty collection, it shows what was created during an outage as created", async () => {
  const fake = new FakeUsers();
  const users = open(fake);
  try {
    await until(users, (v) => v.status === "live" && v.loaded, "live and empty");
    assert.equal(users.getSnapshot().revision, 0n);
    fake.down = true;
    fake.dropStreams();
    await until(users, (v) => v.status !== "live", "noticed the drop");
    fake.create("Ada");
    fake.create("Bea");
    fake.down = false;
    users.retryNow();
    const view = await until(users, (v) => v.status === "live" && v.items.size === 2, "caught up");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(logged(users.getSnapshot()), ["created Ada", "created Bea"]);
    assert.ok(view.highlighted.has("user-1"));
  } finally {
    users.stop();
  }
});

test("changes a server sends again after resuming are applied once", async () => {
  const fake = new FakeUsers();
  fake.create("Ada");
  const users = open(fake);
  try {
    await until(users, (v) => v.status === "live", "live");
    fake.create("Bea");
    await until(users, (v) => v.items.size === 2, "Bea");
    fake.replay = 2;
    fake.dropStreams();
    fake.create("Cy");
    const view = await until(users, (v) => v.items.size === 3 && v.status === "live", "Cy");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(logged(users.getSnapshot()), ["created Bea", "created Cy"]);
    assert.equal(view.revision, fake.revision);
  } finally {
    users.stop();
  }
});

test("out_of_range: lists again, drops what was deleted meanwhile, and watches on from the list's revision", async () => {
  const fake = new FakeUsers();
  for (const name of ["Ada", "Bea", "Cy"]) fake.create(name);
  const users = open(fake);
  try {
    await until(users, (v) => v.status === "live" && v.items.size === 3, "live");
    fake.down = true;
    fake.dropStreams();
    await until(users, (v) => v.status !== "live", "noticed the drop");
    fake.delete("user-2");
    for (const name of ["Dee", "Eve", "Fay"]) fake.create(name);
    fake.oldestResumable = fake.revision;
    // A user created between two pages of the list is on a later page, and the watch from the first
    // page's revision sends its creation again.
    fake.afterFirstPage = () => fake.create("Gus");
    fake.down = false;
    users.retryNow();
    let view = await until(users, (v) => v.status === "live" && v.items.size === 6, "resynced");
    await new Promise((resolve) => setTimeout(resolve, 50));
    view = users.getSnapshot();
    assert.deepEqual(names(view), ["Ada", "Cy", "Dee", "Eve", "Fay", "Gus"]);
    assert.deepEqual(
      logged(view),
      ["created Dee", "created Eve", "created Fay", "created Gus", "deleted Bea"],
      "the feed lists each change once",
    );
    assert.ok(fake.lists >= 3, "listed every page (2 users per page)");
    assert.equal(
      fake.watchStarts.at(-1),
      fake.revision - 1n,
      "watches from the first page's revision",
    );
    assert.ok(view.highlighted.has("user-4"), "rows new since the last view are highlighted");
    const hal = fake.create("Hal");
    view = await until(users, (v) => v.items.has(hal.id), "live again after the resync");
    assert.equal(view.items.size, 7);
  } finally {
    users.stop();
  }
});

test("a snapshot that breaks off half way is not resumed from its revision but listed again", async () => {
  const fake = new FakeUsers();
  for (const name of ["Ada", "Bea", "Cy", "Dee", "Eve"]) fake.create(name);
  fake.breakSnapshotAfter = 1;
  const users = open(fake);
  try {
    await until(users, (v) => v.loaded, "the first batch arrived");
    fake.breakSnapshotAfter = undefined;
    const view = await until(users, (v) => v.items.size === 5 && v.status === "live", "complete");
    assert.deepEqual(names(view), ["Ada", "Bea", "Cy", "Dee", "Eve"]);
    assert.ok(fake.lists > 0, "the rest came from a list");
  } finally {
    users.stop();
  }
});

test("a connection that goes silent (no heartbeats) is replaced", async () => {
  const fake = new FakeUsers();
  fake.create("Ada");
  const users = open(fake, { ...fast, stream: { ...fast.stream, idleTimeoutMs: 150 } });
  try {
    await until(users, (v) => v.status === "live", "live");
    const opened = fake.watchStarts.length;
    fake.silent = true;
    fake.create("Bea");
    await until(users, () => fake.watchStarts.length > opened, "reconnected", 2_000);
    fake.silent = false;
    fake.dropStreams();
    const view = await until(users, (v) => v.items.size === 2, "Bea arrives after the reconnect");
    assert.deepEqual(logged(view), ["created Bea"]);
  } finally {
    users.stop();
  }
});
