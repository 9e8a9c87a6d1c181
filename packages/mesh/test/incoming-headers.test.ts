// IncomingHeaders (src/incoming-headers.ts) answers as the Web Headers connect-node builds from the
// same request would: lookups straight from Node's header object, everything else from a copy.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http2";
import { test } from "node:test";
import { IncomingHeaders } from "../src/protocol/incoming-headers.ts";

const incoming: IncomingHttpHeaders = {
  ":method": "POST",
  ":path": "/shop.user.v1.UserService/GetUser",
  ":authority": "127.0.0.1:8081",
  "content-type": "application/grpc",
  te: "trailers",
  "grpc-timeout": "5S",
  "x-tags": ["a", "b"],
};

/** The Headers connect-node would hand a handler for `incoming`. */
function webHeaders(headers: IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":")) continue;
    for (const item of Array.isArray(value) ? value : [value ?? ""]) result.append(name, item);
  }
  return result;
}

test("lookups answer as Headers: any case, lists joined, pseudo-headers absent", () => {
  const headers = new IncomingHeaders(incoming);
  const expected = webHeaders(incoming);
  for (const name of [
    "content-type",
    "Content-Type",
    "GRPC-TIMEOUT",
    "x-tags",
    "absent",
    ":path",
  ]) {
    assert.equal(headers.get(name), expected.get(name.startsWith(":") ? "absent" : name), name);
    assert.equal(headers.has(name), name.startsWith(":") ? false : expected.has(name), name);
  }
  assert.equal(headers.get("x-tags"), "a, b");
});

test("iteration lists the headers as Headers does, without pseudo-headers", () => {
  const expected = [...webHeaders(incoming)];
  assert.deepEqual([...new IncomingHeaders(incoming)], expected);
  assert.deepEqual([...new IncomingHeaders(incoming).entries()], expected);
  assert.deepEqual(
    [...new IncomingHeaders(incoming).keys()],
    expected.map(([name]) => name),
  );
  assert.deepEqual(
    [...new IncomingHeaders(incoming).values()],
    expected.map(([, value]) => value),
  );
  const seen: [string, string][] = [];
  const headers = new IncomingHeaders(incoming);
  headers.forEach((value, name, parent) => {
    assert.equal(parent, headers);
    seen.push([name, value]);
  });
  assert.deepEqual(seen, expected);
  // Headers accepts it where it takes headers.
  assert.deepEqual([...new Headers(new IncomingHeaders(incoming))], expected);
});

test("changes apply to the copy, and lookups see them; Node's object is left alone", () => {
  const original = structuredClone(incoming);
  const headers = new IncomingHeaders(incoming);
  headers.set("grpc-timeout", "1S");
  headers.append("x-tags", "c");
  headers.delete("te");
  headers.append("x-new", "yes");
  assert.equal(headers.get("grpc-timeout"), "1S");
  assert.equal(headers.get("x-tags"), "a, b, c");
  assert.equal(headers.has("te"), false);
  assert.equal(headers.get("X-New"), "yes");
  assert.deepEqual(incoming, original);
  assert.throws(() => headers.set("bad name", "x"), TypeError);
});

test("compacted, the headers answer the same and no longer hold Node's object", () => {
  const headers = new IncomingHeaders(structuredClone(incoming));
  const before = [...new IncomingHeaders(incoming)];
  headers.compact();
  for (const name of ["content-type", "Content-Type", "x-tags", "te", ":path", "absent"]) {
    assert.equal(headers.get(name), new IncomingHeaders(incoming).get(name), name);
    assert.equal(headers.has(name), new IncomingHeaders(incoming).has(name), name);
  }
  assert.deepEqual([...headers], before);
  headers.append("x-tags", "c");
  assert.equal(headers.get("x-tags"), "a, b, c");
});
