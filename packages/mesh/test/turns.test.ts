// Work that many streams set off at once takes turns with the rest of the process (waitTurn): I/O
// that comes in meanwhile is served between slices, and those waiting go on in the order they asked.
import assert from "node:assert/strict";
import { test } from "node:test";
import { waitTurn } from "../src/protocol/turns.ts";

/** Keeps the thread busy for `ms`, as building and writing a response does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spinning on purpose
  }
}

test("200 tasks woken at once take turns with I/O, in the order they asked", async () => {
  const done: number[] = [];
  let servedAfter: number | undefined;
  // 200 tasks of 0.2 ms each, woken in one turn (40 ms of work in all). Once the first of them
  // that had to wait has run, other work comes due (a timer, as a request's read would be).
  await Promise.all(
    Array.from({ length: 200 }, async (_, task) => {
      await waitTurn();
      busy(0.2);
      done.push(task);
      if (task === 10) {
        setTimeout(() => {
          servedAfter = done.length;
        }, 0);
      }
    }),
  );
  assert.ok(servedAfter !== undefined, "the other work never ran");
  assert.ok(
    servedAfter < 50,
    `the other work waited for ${servedAfter} of the 200 tasks (40 ms) instead of a slice of them`,
  );
  assert.deepEqual(
    done,
    Array.from({ length: 200 }, (_, task) => task),
  );
});

test("a turn is free when the loop is not busy", async () => {
  // Alone in a fresh turn, nobody waits.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(waitTurn(), undefined);
});
