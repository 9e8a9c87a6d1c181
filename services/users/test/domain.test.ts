// The users domain with an in-memory repository: validation, optimistic concurrency, all-or-nothing
// batches and watches, with no transport and no database in the way.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { InvalidStartRevisionError } from "@shop/mesh/watch";
import { batchCreateUsers, maxBatchSize } from "../src/domain/batch-create-users.ts";
import { createUser } from "../src/domain/create-user.ts";
import {
  BatchItemError,
  BatchTooLargeError,
  EmailTakenError,
  InvalidUserError,
  UserNotFoundError,
  VersionMismatchError,
} from "../src/domain/errors.ts";
import { getUser } from "../src/domain/get-user.ts";
import { updateUser } from "../src/domain/update-user.ts";
import type { NewUser, UserEventBatch } from "../src/domain/user.ts";
import { watchUsers } from "../src/domain/watch-users.ts";
import { createFakeUserRepository } from "./fake-user-repository.ts";

async function* streamOf(users: NewUser[]): AsyncGenerator<NewUser> {
  yield* users;
}

function invalidField(field: string) {
  return (error: unknown) => {
    assert.ok(error instanceof InvalidUserError, `expected InvalidUserError, got ${String(error)}`);
    assert.equal(error.field, field);
    return true;
  };
}

describe("createUser", () => {
  test("stores the user with trimmed fields, version 1 and status active", async () => {
    const repo = createFakeUserRepository();
    const user = await createUser(repo, { name: "  Ada Lovelace ", email: " ada@example.com " });
    assert.equal(user.name, "Ada Lovelace");
    assert.equal(user.email, "ada@example.com");
    assert.equal(user.version, 1n);
    assert.equal(user.status, "active");
    assert.deepEqual(
      repo.all().map((stored) => stored.id),
      [user.id],
    );
  });

  for (const name of ["Ada\u0000", "A\u0007da", "Ada\u009b"]) {
    test(`refuses the name ${JSON.stringify(name)} with a control character`, async () => {
      const repo = createFakeUserRepository();
      await assert.rejects(
        createUser(repo, { name, email: "ada@example.com" }),
        invalidField("name"),
      );
      assert.equal(repo.all().length, 0);
    });
  }

  for (const name of ["", "   ", "\t\n"]) {
    test(`refuses the empty name ${JSON.stringify(name)} and stores nothing`, async () => {
      const repo = createFakeUserRepository();
      await assert.rejects(
        createUser(repo, { name, email: "ada@example.com" }),
        invalidField("name"),
      );
      assert.equal(repo.all().length, 0);
    });
  }

  for (const email of [
    "",
    "ada",
    "ada@",
    "@example.com",
    "ada@example",
    "ada lovelace@example.com",
    "ada@exa mple.com",
    "ada@@example.com",
    "ada\u0000@example.com",
    `${"a".repeat(250)}@example.com`,
  ]) {
    test(`refuses the malformed email ${JSON.stringify(email.slice(0, 30))}`, async () => {
      const repo = createFakeUserRepository();
      await assert.rejects(createUser(repo, { name: "Ada", email }), invalidField("email"));
      assert.equal(repo.all().length, 0);
    });
  }

  test("refuses an email another user has, whatever its case", async () => {
    const repo = createFakeUserRepository();
    await createUser(repo, { name: "Ada", email: "ada@example.com" });
    await assert.rejects(
      createUser(repo, { name: "Other Ada", email: "ADA@Example.com" }),
      (error: unknown) => error instanceof EmailTakenError && error.email === "ADA@Example.com",
    );
    assert.equal(repo.all().length, 1);
  });
});

describe("getUser", () => {
  test("returns a stored user", async () => {
    const repo = createFakeUserRepository();
    const created = await createUser(repo, { name: "Ada", email: "ada@example.com" });
    assert.deepEqual(await getUser(repo, created.id), created);
  });

  for (const id of [randomUUID(), "", "not-a-uuid", "'; drop table users; --"]) {
    test(`reports ${JSON.stringify(id.slice(0, 12))} as not found`, async () => {
      const repo = createFakeUserRepository();
      await createUser(repo, { name: "Ada", email: "ada@example.com" });
      await assert.rejects(
        getUser(repo, id),
        (error: unknown) => error instanceof UserNotFoundError && error.id === id,
      );
    });
  }
});

describe("updateUser", () => {
  const setup = async () => {
    const repo = createFakeUserRepository();
    const user = await createUser(repo, { name: "Ada", email: "ada@example.com" });
    return { repo, user };
  };

  test("applies the patch and increases the version by one", async () => {
    const { repo, user } = await setup();
    const updated = await updateUser(repo, {
      id: user.id,
      expectedVersion: 1n,
      patch: { name: " Countess ", status: "suspended" },
      statusGiven: true,
    });
    assert.equal(updated.name, "Countess");
    assert.equal(updated.status, "suspended");
    assert.equal(updated.email, "ada@example.com");
    assert.equal(updated.version, 2n);
  });

  test("refuses a stale version, names the current one and changes nothing", async () => {
    const { repo, user } = await setup();
    await updateUser(repo, {
      id: user.id,
      expectedVersion: 1n,
      patch: { name: "B" },
      statusGiven: false,
    });
    await assert.rejects(
      updateUser(repo, {
        id: user.id,
        expectedVersion: 1n,
        patch: { name: "C" },
        statusGiven: false,
      }),
      (error: unknown) => {
        assert.ok(error instanceof VersionMismatchError);
        assert.equal(error.current, 2n);
        assert.equal(error.expected, 1n);
        assert.match(error.message, /version 2/);
        return true;
      },
    );
    const [stored] = repo.all();
    assert.equal(stored?.name, "B");
    assert.equal(stored?.version, 2n);
  });

  for (const version of [0n, -1n]) {
    test(`refuses version ${version} as invalid`, async () => {
      const { repo, user } = await setup();
      await assert.rejects(
        updateUser(repo, { id: user.id, expectedVersion: version, patch: {}, statusGiven: false }),
        invalidField("version"),
      );
    });
  }

  test("validates the new name, email and status like createUser does", async () => {
    const { repo, user } = await setup();
    const base = { id: user.id, expectedVersion: 1n, statusGiven: false };
    await assert.rejects(updateUser(repo, { ...base, patch: { name: " " } }), invalidField("name"));
    await assert.rejects(
      updateUser(repo, { ...base, patch: { email: "nope" } }),
      invalidField("email"),
    );
    await assert.rejects(
      updateUser(repo, { ...base, patch: { status: undefined }, statusGiven: true }),
      invalidField("status"),
    );
    assert.deepEqual(repo.all(), [user]);
  });

  test("reports an unknown or malformed id as not found", async () => {
    const { repo } = await setup();
    for (const id of [randomUUID(), "nope"]) {
      await assert.rejects(
        updateUser(repo, { id, expectedVersion: 1n, patch: { name: "X" }, statusGiven: false }),
        UserNotFoundError,
      );
    }
  });
});

describe("batchCreateUsers", () => {
  const people = (count: number): NewUser[] =>
    Array.from({ length: count }, (_, i) => ({ name: `Person ${i}`, email: `p${i}@example.com` }));

  test("creates every user of the stream, in order", async () => {
    const repo = createFakeUserRepository();
    const created = await batchCreateUsers(repo, streamOf(people(3)));
    assert.deepEqual(
      created.map((user) => user.email),
      ["p0@example.com", "p1@example.com", "p2@example.com"],
    );
    assert.equal(repo.all().length, 3);
  });

  test("an empty stream creates nobody", async () => {
    const repo = createFakeUserRepository();
    assert.deepEqual(await batchCreateUsers(repo, streamOf([])), []);
    assert.equal(repo.revision(), 0n);
  });

  test("an invalid third message names index 2 and creates nobody", async () => {
    const repo = createFakeUserRepository();
    const batch = people(4);
    batch[2] = { name: "Bad", email: "not-an-email" };
    await assert.rejects(batchCreateUsers(repo, streamOf(batch)), (error: unknown) => {
      assert.ok(error instanceof BatchItemError);
      assert.equal(error.index, 2);
      assert.ok(error.cause instanceof InvalidUserError);
      assert.match(error.message, /\b2\b/);
      return true;
    });
    assert.equal(repo.all().length, 0);
  });

  test("an empty name names its index", async () => {
    const repo = createFakeUserRepository();
    const batch = people(2);
    batch[1] = { name: "", email: "x@example.com" };
    await assert.rejects(
      batchCreateUsers(repo, streamOf(batch)),
      (error: unknown) => error instanceof BatchItemError && error.index === 1,
    );
  });

  test("a duplicate email within the batch names the later message and creates nobody", async () => {
    const repo = createFakeUserRepository();
    const batch = people(4);
    batch[3] = { name: "Twin", email: "P1@EXAMPLE.COM" };
    await assert.rejects(batchCreateUsers(repo, streamOf(batch)), (error: unknown) => {
      assert.ok(error instanceof BatchItemError);
      assert.equal(error.index, 3);
      assert.ok(error.cause instanceof EmailTakenError);
      return true;
    });
    assert.equal(repo.all().length, 0);
  });

  test("an email taken before the batch names the message that carried it", async () => {
    const repo = createFakeUserRepository();
    await createUser(repo, { name: "Early", email: "p2@example.com" });
    await assert.rejects(batchCreateUsers(repo, streamOf(people(4))), (error: unknown) => {
      assert.ok(error instanceof BatchItemError);
      assert.equal(error.index, 2);
      assert.ok(error.cause instanceof EmailTakenError);
      return true;
    });
    assert.deepEqual(
      repo.all().map((user) => user.email),
      ["p2@example.com"],
    );
  });

  test("an unexpected repository failure passes through unchanged", async () => {
    const repo = createFakeUserRepository();
    const failure = new Error("connection reset");
    repo.failNext("insert", failure);
    await assert.rejects(batchCreateUsers(repo, streamOf(people(2))), (error) => error === failure);
  });

  test(`more than ${maxBatchSize} messages is refused and creates nobody`, async () => {
    const repo = createFakeUserRepository();
    await assert.rejects(
      batchCreateUsers(repo, streamOf(people(maxBatchSize + 1))),
      BatchTooLargeError,
    );
    assert.equal(repo.all().length, 0);
  });
});

describe("watchUsers", () => {
  /** Reads batches until `enough` says so, then stops the watch. */
  async function collect(
    batches: AsyncIterableIterator<UserEventBatch>,
    enough: (seen: UserEventBatch[]) => boolean,
  ): Promise<UserEventBatch[]> {
    const seen: UserEventBatch[] = [];
    for await (const batch of batches) {
      seen.push(batch);
      if (enough(seen)) break;
    }
    return seen;
  }
  const eventsOf = (batches: UserEventBatch[]) => batches.flatMap((batch) => batch.events);

  test("refuses a negative start revision", async () => {
    const repo = createFakeUserRepository();
    const watch = watchUsers(repo, { startRevision: -1n, signal: new AbortController().signal });
    await assert.rejects(watch.next(), InvalidStartRevisionError);
  });

  test("from 0: the current users as snapshot events, then the changes after them", async () => {
    const repo = createFakeUserRepository();
    const a = await createUser(repo, { name: "A", email: "a@example.com" });
    const b = await createUser(repo, { name: "B", email: "b@example.com" });
    const controller = new AbortController();
    const watch = watchUsers(repo, { startRevision: 0n, signal: controller.signal });
    const first = await watch.next();
    assert.equal(first.done, false);
    // In id order, the order the pages of the state are read in.
    assert.deepEqual(
      first.value?.events.map((event) => [event.type, event.user.email, event.revision]),
      [a, b].sort((x, y) => (x.id < y.id ? -1 : 1)).map((user) => ["snapshot", user.email, 2n]),
    );
    assert.equal(first.value?.revision, 2n);
    await createUser(repo, { name: "C", email: "c@example.com" });
    const rest = await collect(watch, (seen) => eventsOf(seen).length > 0);
    assert.deepEqual(
      eventsOf(rest).map((event) => [event.type, event.user.email, event.revision]),
      [["created", "c@example.com", 3n]],
    );
    controller.abort();
  });

  test("from R: every change after R, in order, and no snapshot", async () => {
    const repo = createFakeUserRepository();
    const a = await createUser(repo, { name: "A", email: "a@example.com" });
    const start = repo.revision();
    await createUser(repo, { name: "B", email: "b@example.com" });
    await updateUser(repo, {
      id: a.id,
      expectedVersion: 1n,
      patch: { name: "A2" },
      statusGiven: false,
    });
    const controller = new AbortController();
    const watch = watchUsers(repo, { startRevision: start, signal: controller.signal });
    const seen = await collect(watch, (batches) => eventsOf(batches).length >= 2);
    assert.deepEqual(
      eventsOf(seen).map((event) => [event.type, event.user.name, event.revision]),
      [
        ["created", "B", 2n],
        ["updated", "A2", 3n],
      ],
    );
    controller.abort();
  });

  test("ends when its signal aborts", async () => {
    const repo = createFakeUserRepository();
    const controller = new AbortController();
    const watch = watchUsers(repo, { startRevision: 0n, signal: controller.signal });
    // The (empty) state, then the first response of the live changes.
    await watch.next();
    await watch.next();
    const pending = watch.next();
    controller.abort();
    assert.deepEqual(await pending, { done: true, value: undefined });
  });
});
