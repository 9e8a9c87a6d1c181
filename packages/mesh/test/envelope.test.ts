import assert from "node:assert/strict";
import { test } from "node:test";
import { compressedFlag, EnvelopeBuffer, envelope, messageOf } from "../src/protocol/envelope.ts";

test("an envelope buffer finds the envelopes in a body however its chunks fall", () => {
  const body = Buffer.concat([
    envelope(Buffer.from("first")),
    envelope(Buffer.from("second"), compressedFlag),
    envelope(Buffer.alloc(0)),
  ]);
  // Every split of the body into three chunks, header boundaries included.
  for (let a = 0; a <= body.length; a++) {
    for (let b = a; b <= body.length; b += 3) {
      const buffer = new EnvelopeBuffer();
      const taken: string[] = [];
      const flags: number[] = [];
      for (const chunk of [body.subarray(0, a), body.subarray(a, b), body.subarray(b)]) {
        buffer.push(chunk);
        for (;;) {
          const announced = buffer.announced();
          const flag = buffer.flags();
          const frame = buffer.take();
          if (frame === undefined) break;
          assert.equal(frame.length, 5 + announced);
          flags.push(flag);
          taken.push(messageOf(frame).toString());
        }
      }
      assert.deepEqual(taken, ["first", "second", ""], `split at ${a}, ${b}`);
      assert.deepEqual(flags, [0, compressedFlag, 0]);
      assert.equal(buffer.size, 0);
    }
  }
});

test("an envelope buffer tells an announced length before the message is in, and keeps what is incomplete", () => {
  const buffer = new EnvelopeBuffer();
  buffer.push(Buffer.from([0, 0, 0]));
  assert.equal(buffer.announced(), -1, "the header is not in yet");
  buffer.push(Buffer.from([1, 0, 7]));
  assert.equal(buffer.announced(), 256);
  assert.equal(buffer.take(), undefined);
  assert.equal(buffer.size, 6);
  assert.deepEqual([...buffer.all()], [0, 0, 0, 1, 0, 7]);
  buffer.clear();
  assert.equal(buffer.size, 0);
  assert.equal(buffer.all().length, 0);
});
