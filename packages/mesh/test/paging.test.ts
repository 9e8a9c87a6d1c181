// Page tokens (src/service/paging.ts): a token gives back its position only to a request with the
// filters of the request that got it, says what to do otherwise, and shows nothing of the filters.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodePageToken, encodePageToken, type PageFilters } from "../src/service/paging.ts";

const digits = (after: string) => /^\d+$/.test(after);

/** The ConnectError `decode` throws; fails when it returns. */
function refusal(decode: () => unknown): ConnectError {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof ConnectError, String(error));
    return error;
  }
  assert.fail("the token was accepted");
}

const filterSets: PageFilters[] = [
  {},
  { query: "ada", newest_first: false },
  { query: "Ada", newest_first: false },
  { query: "ada", newest_first: true },
  { query: "", newest_first: true },
  { user_id: "8a1f6a4e-2f33-4b8e-9d55-0f0e4b7c1d2a", status: 1 },
  { user_id: "8a1f6a4e-2f33-4b8e-9d55-0f0e4b7c1d2a", status: 2 },
  { status: 2 },
];

test("a token decodes to its position with the filters it was made for, and only with those", () => {
  for (const made of filterSets) {
    const token = encodePageToken("42", made);
    assert.equal(decodePageToken(token, digits, made), "42");
    for (const other of filterSets.filter((candidate) => candidate !== made)) {
      const error = refusal(() => decodePageToken(token, digits, other));
      assert.equal(error.code, Code.InvalidArgument);
      assert.match(error.rawMessage, /page_token belongs to a request with other filters/);
      assert.match(error.rawMessage, /first page/);
      for (const name of Object.keys(other)) assert.ok(error.rawMessage.includes(name), name);
    }
  }
});

test("filters at their defaults are no filters: tokens made before filters existed still work", () => {
  const unfiltered = Buffer.from(JSON.stringify({ after: "7" })).toString("base64url");
  for (const defaults of [{}, { query: "", newest_first: false }, { user_id: undefined }]) {
    assert.equal(decodePageToken(unfiltered, digits, defaults), "7");
    assert.equal(decodePageToken(encodePageToken("7", defaults), digits, {}), "7");
  }
});

test("a token shows neither its filters nor their text", () => {
  const query = "someone@example.com";
  const decoded = Buffer.from(encodePageToken("9", { query }), "base64url").toString("utf8");
  assert.ok(!decoded.includes(query), decoded);
  assert.ok(!decoded.includes("query"), decoded);
});

test("a token whose filters were tampered with is refused like one from other filters", () => {
  const forged = (filters: unknown) =>
    Buffer.from(JSON.stringify({ after: "3", filters })).toString("base64url");
  for (const filters of ["", "x", 1, null, {}]) {
    const error = refusal(() => decodePageToken(forged(filters), digits, { query: "ada" }));
    assert.equal(error.code, Code.InvalidArgument);
  }
});
