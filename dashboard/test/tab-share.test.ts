// Streams shared between tabs (tab-share.ts), with Node's own Web Locks and BroadcastChannel (the
// browser's APIs, in one process here): one tab reads a stream for all of them, the others follow
// it; when the reading tab goes, the next one reads on from where it is, missing nothing; a tab
// that sees it missed changes reads them itself; a new tab gets a shared value at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient } from "@connectrpc/connect";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createLiveCollection,
  EventKind,
  type LiveCollection,
} from "../src/lib/live-collection.ts";
import { createLiveValue } from "../src/lib/live-value.ts";
import { userSource } from "../src/lib/sources.ts";
import { shareCollection, shareValue } from "../src/lib/tab-share.ts";
import { FakeUsers, fast, names, until } from "./support/fake-users.ts";

let channels = 0;

/** A tab's users list, shared under `name` with the other tabs of the test. */
function openTab(fake: FakeUsers, name: string, options = fast): LiveCollection<User> {
  const source = userSource(createClient(UserService, fake.transport()));
  const collection = createLiveCollection(shareCollection(name, source), options);
  collection.start();
  return collection;
}

test("one tab reads the stream for all; when it goes, the next reads on from its revision, missing nothing", async () => {
  const name = `users-${++channels}`;
  const fake = new FakeUsers();
  fake.create("Ada");
  fake.create("Grace");
  fake.create("Edsger");
  const first = openTab(fake, name);
  const second = openTab(fake, name);
  const third = openTab(fake, name);
  try {
    for (const tab of [first, second, third]) {
      await until(tab, (v) => v.loaded && v.status === "live", "every tab is live");
    }
    assert.deepEqual(fake.watchStarts, [0n], "one watch, from the first tab");
    assert.ok(fake.lists >= 2, "the following tabs listed the users");

    const alan = fake.create("Alan");
    for (const tab of [first, second, third]) {
      const view = await until(tab, (v) => v.items.has(alan.id), "Alan reaches every tab");
      assert.ok(view.highlighted.has(alan.id), "as a change, highlighted");
      assert.deepEqual(
        view.activity.map((entry) => `${entry.kind} ${entry.item.name}`),
        ["created Alan"],
      );
    }
    assert.equal(fake.watchStarts.length, 1, "still one watch");

    // The reading tab closes: one of the others reads on, from its own revision.
    first.stop();
    const barbara = fake.create("Barbara");
    const edsgerId = [...fake.users.values()].find((user) => user.name === "Edsger")?.id ?? "";
    fake.delete(edsgerId);
    for (const tab of [second, third]) {
      const view = await until(
        tab,
        (v) => v.items.has(barbara.id) && !v.items.has(edsgerId),
        "the changes made after the reading tab closed reach the others",
      );
      assert.deepEqual(names(view), ["Ada", "Alan", "Barbara", "Grace"]);
      assert.equal(view.revision, fake.revision);
    }
    assert.equal(fake.watchStarts.length, 2, "one new watch for the tabs left");
    assert.ok((fake.watchStarts[1] ?? 0n) > 0n, "resumed from a revision, not from 0");
  } finally {
    for (const tab of [first, second, third]) tab.stop();
  }
});

test("a following tab that sees it missed changes reads them with a short watch of its own, then follows on", async () => {
  const name = `users-${++channels}`;
  const fake = new FakeUsers();
  fake.create("Ada");
  // Another tab reads the stream (it holds the lock), so this one follows.
  let release: (() => void) | undefined;
  let held: (() => void) | undefined;
  const holding = new Promise<void>((resolve) => {
    held = resolve;
  });
  void navigator.locks.request(name, () => {
    held?.();
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  });
  await holding;
  const follower = openTab(fake, name);
  try {
    await until(follower, (v) => v.loaded, "the follower listed the users");
    const listed = fake.revision;
    const lists = fake.lists;
    // Changes the follower never got a post for, then a post that starts after them.
    const grace = fake.create("Grace");
    const alan = fake.create("Alan");
    const channel = new BroadcastChannel(name);
    channel.postMessage({
      kind: "batch",
      from: listed + 1n,
      batch: {
        revision: listed + 2n,
        events: [{ type: EventKind.created, item: alan, revision: listed + 2n }],
      },
    });
    channel.close();
    const view = await until(
      follower,
      (v) => v.items.has(grace.id) && v.items.has(alan.id),
      "the follower has the change it missed and the posted one",
    );
    assert.deepEqual(names(view), ["Ada", "Alan", "Grace"]);
    assert.deepEqual(
      view.activity.map((entry) => `${entry.kind} ${entry.item.name} ${entry.revision}`),
      [`created Alan ${listed + 2n}`, `created Grace ${listed + 1n}`],
      "each change once, with its own revision",
    );
    assert.equal(fake.lists, lists, "no list again");
    assert.deepEqual(fake.watchStarts, [listed], "one short watch from the follower's revision");
  } finally {
    follower.stop();
    release?.();
  }
});

test("when the reading tab's stream drops, the following tabs show it too, and all come back", async () => {
  const name = `users-${++channels}`;
  const fake = new FakeUsers();
  fake.create("Ada");
  // No heartbeat or idle timeout within the test: a tab that follows again after the drop is
  // live at once because the reading tab answers its hello, not because its watch timed out.
  const patient = { ...fast, stream: { ...fast.stream, idleTimeoutMs: 60_000 } };
  const first = openTab(fake, name, patient);
  await until(first, (v) => v.loaded && v.status === "live", "the first tab is live");
  const second = openTab(fake, name, patient);
  try {
    await until(second, (v) => v.loaded && v.status === "live", "the second tab is live");
    const statuses: string[] = [];
    second.subscribe(() => statuses.push(second.getSnapshot().status));
    // The service goes down for a moment: the second tab shows it, whether it hears of the drop
    // from the reading tab or takes over the stream itself (the reading tab let go of its lock).
    fake.down = true;
    fake.dropStreams();
    await waitUntil(() => statuses.includes("reconnecting"), "the second tab shows the drop");
    fake.down = false;
    const grace = fake.create("Grace");
    for (const tab of [first, second]) {
      await until(
        tab,
        (v) => v.status === "live" && v.items.has(grace.id),
        "back, with the change",
      );
    }
  } finally {
    first.stop();
    second.stop();
  }
});

test("a shared value: one stream for all tabs, and a tab that opens later gets the latest at once", async () => {
  const name = `value-${++channels}`;
  let opened = 0;
  let push: ((value: number) => void) | undefined;
  const open = async function* (signal: AbortSignal) {
    opened++;
    const queue: number[] = [1];
    let wake: (() => void) | undefined;
    push = (value) => {
      queue.push(value);
      wake?.();
    };
    signal.addEventListener("abort", () => wake?.());
    while (!signal.aborted) {
      const value = queue.shift();
      if (value !== undefined) yield value;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  const first = createLiveValue(shareValue(name, open), fast.stream);
  first.start();
  await waitUntil(() => first.getSnapshot().value === 1, "the first tab has the value");
  push?.(2);
  await waitUntil(() => first.getSnapshot().value === 2, "the first tab has the next value");
  const second = createLiveValue(shareValue(name, open), fast.stream);
  second.start();
  try {
    await waitUntil(() => second.getSnapshot().value === 2, "the second tab gets the latest");
    push?.(3);
    await waitUntil(
      () => first.getSnapshot().value === 3 && second.getSnapshot().value === 3,
      "both tabs get the next",
    );
    assert.equal(opened, 1, "one stream");
    first.stop();
    await waitUntil(() => opened === 2, "the second tab opens the stream when the first goes");
    await waitUntil(() => second.getSnapshot().value === 1, "and reads it itself");
  } finally {
    first.stop();
    second.stop();
  }
});

async function waitUntil(check: () => boolean, message: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
