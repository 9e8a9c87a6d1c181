// Fair turns of the event loop for work that many streams set off at once. A snapshot page read
// once for 100 watchers, or a change the feed hands to 1,000 watches, wakes every one of them in
// the same turn of the event loop: each then builds and writes its response, and a unary call that
// arrived meanwhile waits for all of them (tens of milliseconds) before its request is even read.
// Written here because no library schedules promise continuations by time slices of the loop.
//
// A slice cannot be measured where the work asks for its turn: woken together, every one of them
// asks before any has done its work (promise continuations run in the order they were queued). So
// beyond a few asks per turn, each waits for an immediate of its own: Node runs the promise
// continuations after each immediate before the next one, so each is granted its turn once the
// work of the one before it is done, and the time is measured there.

/** How many may go on at once in a turn of the loop before the others queue. */
const freePerTurn = 4;
/** How long the granted work may run in one check phase before the rest waits for the next. */
const sliceMs = 2;

let freeLeft = freePerTurn;
/** When the first grant of this check phase was made; undefined before it. */
let sliceStart: number | undefined;
let resetScheduled = false;
/** How many wait for their turn. */
let waiting = 0;

/**
 * Undefined when the caller may go on now; else a promise of its turn. Beyond `freePerTurn` asks
 * in a turn, whoever asks waits, first come first served, and the waiting go on one after the
 * other until their work has taken `sliceMs`; the rest goes on after the loop has polled for I/O
 * again, so other calls are read and answered between slices.
 */
export function waitTurn(): Promise<void> | undefined {
  if (waiting === 0 && freeLeft > 0) {
    freeLeft--;
    scheduleReset();
    return undefined;
  }
  waiting++;
  return new Promise((resolve) => setImmediate(grant, resolve));
}

/** In the check phase: lets one waiter go on, or sends it to the next turn when the slice is spent. */
function grant(resolve: () => void): void {
  const now = performance.now();
  if (sliceStart === undefined) {
    sliceStart = now;
    scheduleReset();
  } else if (now - sliceStart >= sliceMs) {
    // Queued from the check phase, it runs in the next one, after the loop's poll for I/O.
    setImmediate(grant, resolve);
    return;
  }
  waiting--;
  resolve();
}

/** A new turn in the next check phase: its asks are free again and its slice starts anew. */
function scheduleReset(): void {
  if (resetScheduled) return;
  resetScheduled = true;
  setImmediate(reset);
}

function reset(): void {
  resetScheduled = false;
  freeLeft = freePerTurn;
  sliceStart = undefined;
}
