// snapshotThenChanges, the way every Watch* RPC delivers the current state page by page: whatever
// writes land between the reads of its pages, the watcher ends up with the true state, each
// snapshot response leaves it with every key up to that page as of that response's revision, the
// revisions it is told never go back, and every change after the snapshot arrives exactly once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { mapStream, type SnapshotPage, snapshotThenChanges } from "@shop/mesh/watch";
import fc from "fast-check";

interface Item {
  key: string;
  value: number;
}
interface Event {
  type: "snapshot" | "created" | "updated" | "deleted";
  item: Item;
  revision: bigint;
}

/** A keyed collection with a change log, as a service's table and change log are. */
function createCollection() {
  const items = new Map<string, Item>();
  const log: Event[] = [];
  return {
    items,
    log,
    revision: () => BigInt(log.length),
    write(key: string, value: number | undefined) {
      const before = items.get(key);
      if (value === undefined) {
        if (!before) return;
        items.delete(key);
        log.push({ type: "deleted", item: before, revision: BigInt(log.length + 1) });
        return;
      }
      const item = { key, value };
      items.set(key, item);
      const type = before ? "updated" : "created";
      log.push({ type, item, revision: BigInt(log.length + 1) });
    },
    page(after: string | undefined, limit: number): SnapshotPage<Item> {
      const rest = [...items.values()]
        .filter((item) => after === undefined || item.key > after)
        .sort((a, b) => (a.key < b.key ? -1 : 1));
      const page = rest.slice(0, limit);
      return {
        items: page.map((item) => ({ ...item })),
        revision: BigInt(log.length),
        next: rest.length > limit ? page.at(-1)?.key : undefined,
      };
    },
    /** The state as of `revision`, replayed from the log. */
    stateAt(revision: bigint): Map<string, number> {
      const state = new Map<string, number>();
      for (const event of log) {
        if (event.revision > revision) break;
        if (event.type === "deleted") state.delete(event.item.key);
        else state.set(event.item.key, event.item.value);
      }
      return state;
    },
  };
}

const keyOf = fc.constantFrom(
  ...Array.from({ length: 24 }, (_, i) => `k${String(i).padStart(2, "0")}`),
);
const writeOf = fc.tuple(keyOf, fc.option(fc.integer({ min: 0, max: 99 }), { nil: undefined }));

test("pages read between writes add up to the true state, then every later change once", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(writeOf, { maxLength: 40 }),
      // The writes that land before each read of a page or of the changes meanwhile.
      fc.array(fc.array(writeOf, { maxLength: 6 }), { maxLength: 30 }),
      fc.integer({ min: 1, max: 5 }),
      fc.array(writeOf, { minLength: 1, maxLength: 10 }),
      async (initial, between, pageSize, later) => {
        const collection = createCollection();
        for (const [key, value] of initial) collection.write(key, value);
        let reads = 0;
        const writeBetween = () => {
          for (const [key, value] of between[reads++ % Math.max(1, between.length)] ?? []) {
            collection.write(key, value);
          }
        };
        // What the watcher holds, built from the events it was sent.
        const held = new Map<string, number>();
        const upTo = (state: Map<string, number>, through: string | undefined) =>
          [...state].filter(([key]) => through === undefined || key <= through).sort();
        let snapshotRevision: bigint | undefined;
        const watch = snapshotThenChanges<Item, Event>({
          startRevision: 0n,
          pageSize,
          page: async ({ after, limit, atLeast }) => {
            // Asked for only once the watcher has taken everything before: by then it holds
            // every key up to `after` as of the revision it was last told.
            if (after !== undefined) {
              assert.deepEqual(upTo(held, after), upTo(collection.stateAt(atLeast), after));
            }
            writeBetween();
            const page = collection.page(after, limit);
            assert.ok(page.revision >= atLeast);
            return page;
          },
          toSnapshotEvent: (item, revision) => ({ type: "snapshot", item, revision }),
          async *changesThrough({ after, upTo, through }) {
            writeBetween();
            const events = collection.log.filter(
              (event) =>
                event.revision > after && event.revision <= upTo && event.item.key <= through,
            );
            // In batches of two, as a store reads them in bounded batches.
            for (let i = 0; i < events.length; i += 2) {
              const batch = events.slice(i, i + 2);
              const last = i + 2 >= events.length;
              yield { events: batch, revision: last ? upTo : (batch.at(-1)?.revision ?? upTo) };
            }
          },
          asSnapshotEvent: (event) =>
            event.type === "deleted" ? event : { ...event, type: "snapshot" },
          async *changes(after) {
            snapshotRevision = after;
            assert.deepEqual(
              upTo(held, undefined),
              upTo(collection.stateAt(after), undefined),
              "after the last page the watcher holds the whole state as of its revision",
            );
            for (const [key, value] of later) collection.write(key, value);
            const events = collection.log.filter((event) => event.revision > after);
            yield { events, revision: collection.revision() };
          },
        });

        let told = 0n;
        let lastEventRevision = 0n;
        for await (const batch of watch) {
          assert.ok(batch.revision >= told, "response revisions never go back");
          told = batch.revision;
          for (const event of batch.events) {
            assert.ok(event.revision >= lastEventRevision, "event revisions never go back");
            assert.ok(event.revision <= batch.revision, "no event is ahead of its response");
            lastEventRevision = event.revision;
            if (event.type === "deleted") held.delete(event.item.key);
            else held.set(event.item.key, event.item.value);
          }
          if (snapshotRevision !== undefined) {
            const after = snapshotRevision;
            assert.deepEqual(
              batch.events.map((event) => event.revision),
              collection.log.filter((event) => event.revision > after).map((e) => e.revision),
              "every change after the snapshot, once, in order",
            );
            break;
          }
        }
        assert.ok(snapshotRevision !== undefined, "the watch went on to live changes");
        assert.deepEqual(upTo(held, undefined), upTo(collection.stateAt(told), undefined));
      },
    ),
    { numRuns: 300 },
  );
});

test("a page older than what the watcher already has is refused rather than sent", async () => {
  const pages: SnapshotPage<Item>[] = [
    { items: [{ key: "a", value: 1 }], revision: 5n, next: "a" },
    { items: [{ key: "b", value: 1 }], revision: 4n, next: undefined },
  ];
  const watch = snapshotThenChanges<Item, Event>({
    startRevision: 0n,
    page: async () => pages.shift() as SnapshotPage<Item>,
    toSnapshotEvent: (item, revision) => ({ type: "snapshot", item, revision }),
    changesThrough: async function* () {},
    asSnapshotEvent: (event) => event,
    changes: async function* () {},
  });
  await watch.next();
  await assert.rejects(watch.next(), /revision 4 was read after one at 5/);
});

test("a watch waiting for its reader holds neither the page it sent nor its items", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  let sent: WeakRef<SnapshotPage<Item>> | undefined;
  const watch = snapshotThenChanges<Item, Event>({
    startRevision: 0n,
    page: async ({ after }) => {
      const page: SnapshotPage<Item> = {
        items: Array.from({ length: 1_000 }, (_, i) => ({ key: `${after ?? ""}${i}`, value: i })),
        revision: 1n,
        next: "more",
      };
      sent ??= new WeakRef(page);
      return page;
    },
    toSnapshotEvent: (item, revision) => ({ type: "snapshot", item, revision }),
    changesThrough: async function* () {},
    asSnapshotEvent: (event) => event,
    changes: async function* () {},
  });
  // The reader takes the first page and lets it go; the watch waits for it to ask again.
  let first: unknown = await watch.next();
  assert.ok(first);
  first = undefined;
  await new Promise((resolve) => setTimeout(resolve, 10));
  gc();
  assert.equal(sent?.deref(), undefined, "the page was let go of");
  await watch.return?.(undefined);
});

test("mapStream converts each item and passes the end and errors through", async () => {
  const source = async function* () {
    yield 1;
    yield 2;
    throw new Error("broken");
  };
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const item of mapStream(source(), (n) => `#${n}`)) seen.push(item);
  }, /broken/);
  assert.deepEqual(seen, ["#1", "#2"]);
  let returned = false;
  const endless = async function* () {
    try {
      for (;;) yield 0;
    } finally {
      returned = true;
    }
  };
  for await (const _ of mapStream(endless(), String)) break;
  assert.ok(returned, "breaking out returns the source");
});
