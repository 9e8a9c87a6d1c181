// The stages of a stream (observers and stops) joined in one object behave as the same stages
// would, each wrapping the one before: these tests pin that behaviour.
import assert from "node:assert/strict";
import { test } from "node:test";
import { observeStream, type StreamEnd, stopStreamOn } from "../src/protocol/stream-stages.ts";

/** A producer of `values`, then (if set) a failure, or a wait that only `return()` ends. */
function producer(values: number[], then?: "fail" | "wait") {
  const log: string[] = [];
  let release: (() => void) | undefined;
  const stream: AsyncIterable<number> = {
    [Symbol.asyncIterator]() {
      let index = 0;
      return {
        next: async () => {
          if (index < values.length) return { done: false, value: values[index++] as number };
          if (then === "fail") throw new Error("producer failed");
          if (then === "wait") {
            await new Promise<void>((resolve) => {
              release = resolve;
            });
          }
          return { done: true, value: undefined };
        },
        return: async () => {
          log.push("returned");
          release?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { stream, log };
}

const ends = (log: string[], name: string) => (end: StreamEnd) => {
  const error = end.error instanceof Error ? end.error.message : end.error;
  log.push(
    `${name} end ${end.closed ? "closed" : "done"}${error === undefined ? "" : ` ${error}`}`,
  );
};

test("stages added before reading join one stream; a stage added once it is read wraps it", async () => {
  const { stream } = producer([1, 2]);
  const first = observeStream(stream, { map: (n) => n + 1 });
  const second = stopStreamOn(first, () => () => {});
  const third = observeStream(second, { map: (n) => n * 10 });
  assert.equal(second, first, "a stop joins the stream");
  assert.equal(third, first, "an observer joins it too");
  const reading = third[Symbol.asyncIterator]();
  assert.equal(reading, third, "the stream is its own iterator");
  const wrapped = observeStream(third, { map: (n) => -n });
  assert.notEqual(wrapped, third, "once read, a new stage cannot join it");
  const seen: number[] = [];
  for await (const value of wrapped) seen.push(value);
  assert.deepEqual(seen, [-20, -30], "maps in order, the first stage innermost");
});

test("done: every stage ends, the innermost first; stops are disarmed", async () => {
  const log: string[] = [];
  const { stream } = producer([1]);
  let messages = observeStream(stream, { onEnd: ends(log, "a") });
  messages = stopStreamOn(messages, () => () => log.push("stop disarmed"));
  messages = observeStream(messages, { onEnd: ends(log, "b") });
  for await (const _ of messages) log.push("message");
  assert.deepEqual(log, ["message", "a end done", "stop disarmed", "b end done"]);
});

test("a failure passes through each observer's mapError in turn, and each ends with the error it passed on", async () => {
  const log: string[] = [];
  const { stream } = producer([], "fail");
  let messages = observeStream(stream, {
    mapError: (error) => new Error(`a(${(error as Error).message})`),
    onEnd: ends(log, "a"),
  });
  messages = observeStream(messages, {
    mapError: (error) => new Error(`b(${(error as Error).message})`),
    onEnd: ends(log, "b"),
  });
  await assert.rejects(
    messages[Symbol.asyncIterator]().next(),
    /^Error: b\(a\(producer failed\)\)$/,
  );
  assert.deepEqual(log, ["a end done a(producer failed)", "b end done b(a(producer failed))"]);
});

test("a stop ends a waiting read: the stages after it fail with its error, those before it close once the producer has returned", async () => {
  const log: string[] = [];
  const { stream, log: producerLog } = producer([1], "wait");
  let stop: ((error: unknown) => void) | undefined;
  let messages = observeStream(stream, { onEnd: ends(log, "inner") });
  messages = stopStreamOn(messages, (armed) => {
    stop = armed;
    return () => log.push("disarmed");
  });
  messages = observeStream(messages, {
    mapError: (error) => new Error(`mapped ${(error as Error).message}`),
    onEnd: ends(log, "outer"),
  });
  const reading = messages[Symbol.asyncIterator]();
  assert.equal((await reading.next()).value, 1);
  const waiting = reading.next();
  stop?.(new Error("shutdown"));
  await assert.rejects(waiting, /^Error: mapped shutdown$/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(producerLog, ["returned"], "the producer is told to return");
  assert.deepEqual(log, ["disarmed", "outer end done mapped shutdown", "inner end closed"]);
  await assert.rejects(reading.next(), /^Error: mapped shutdown$/, "later reads fail alike");
});

test("a stop while no read waits fails the next read", async () => {
  const log: string[] = [];
  const { stream } = producer([1, 2]);
  let stop: ((error: unknown) => void) | undefined;
  let messages = stopStreamOn(stream, (armed) => {
    stop = armed;
    return () => {};
  });
  messages = observeStream(messages, { onEnd: ends(log, "outer") });
  const reading = messages[Symbol.asyncIterator]();
  assert.equal((await reading.next()).value, 1);
  stop?.(new Error("deadline"));
  assert.deepEqual(log, [], "the outer stage learns of it when it reads");
  await assert.rejects(reading.next(), /^Error: deadline$/);
  assert.deepEqual(log, ["outer end done deadline"]);
});

test("a stop that fires as it is armed fails the first read", async () => {
  const { stream, log } = producer([1]);
  const messages = stopStreamOn(stream, (stop) => {
    stop(new Error("already shut down"));
    return () => {};
  });
  await assert.rejects(messages[Symbol.asyncIterator]().next(), /already shut down/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(log, ["returned"]);
});

test("the reader's return() closes every stage: the stop, the observers after it, then those before it once the producer has returned", async () => {
  const log: string[] = [];
  const { stream, log: producerLog } = producer([1, 2], "wait");
  let messages = observeStream(stream, { onEnd: ends(log, "inner") });
  messages = stopStreamOn(messages, () => () => log.push("disarmed"));
  messages = observeStream(messages, { onEnd: ends(log, "outer") });
  const reading = messages[Symbol.asyncIterator]();
  await reading.next();
  const result = await reading.return?.();
  assert.deepEqual(result, { done: true, value: undefined });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(producerLog, ["returned"]);
  assert.deepEqual(log, ["disarmed", "outer end closed", "inner end closed"]);
});

test("without a stop, return() waits for the producer, and every observer ends closed", async () => {
  const log: string[] = [];
  const { stream, log: producerLog } = producer([1]);
  let messages = observeStream(stream, { onEnd: ends(log, "a") });
  messages = observeStream(messages, { onEnd: ends(log, "b") });
  const reading = messages[Symbol.asyncIterator]();
  await reading.next();
  await reading.return?.();
  assert.deepEqual(producerLog, ["returned"]);
  assert.deepEqual(log, ["a end closed", "b end closed"]);
});

test("a map that throws fails the stages after it", async () => {
  const log: string[] = [];
  const { stream } = producer([1]);
  let messages = observeStream(stream, {
    map: () => {
      throw new Error("cannot convert");
    },
    onEnd: ends(log, "a"),
  });
  messages = observeStream(messages, { onEnd: ends(log, "b") });
  await assert.rejects(messages[Symbol.asyncIterator]().next(), /cannot convert/);
  assert.deepEqual(log, ["b end done cannot convert"]);
});

test("pull hooks run around the producer's next(), the outermost outside", async () => {
  const log: string[] = [];
  const { stream } = producer([1]);
  const around =
    (name: string) =>
    async (next: () => Promise<IteratorResult<number>>): Promise<IteratorResult<number>> => {
      log.push(`${name} in`);
      const result = await next();
      log.push(`${name} out`);
      return result;
    };
  let messages = observeStream(stream, { pull: around("inner") });
  messages = observeStream(messages, { pull: around("outer") });
  await messages[Symbol.asyncIterator]().next();
  assert.deepEqual(log, ["outer in", "inner in", "inner out", "outer out"]);
});
