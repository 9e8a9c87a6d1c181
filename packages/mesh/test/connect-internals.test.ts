// The runtime uses parts of connect-es that its authors mark internal ("does not follow semantic
// versioning"): the gRPC and Connect timeout parsers, the gRPC status trailers (written and read),
// and the serving path's Connect and gRPC-web wire helpers (error JSON, HTTP status of a code,
// end-stream message, trailer frame, metadata merge). connect-es is pinned to an exact version for
// it; these tests pin what the runtime relies on, so that an update that changes any of it fails
// here first.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  endStreamFlag,
  endStreamToJson,
  errorToJsonBytes,
  parseTimeout as parseConnectTimeout,
} from "@connectrpc/connect/protocol-connect";
import {
  findTrailerError,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { UserSchema } from "@shop/api/shop/user/v1/user_pb";

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};

for (const name of ["@connectrpc/connect", "@connectrpc/connect-node"]) {
  test(`${name} is pinned to the exact version installed`, () => {
    const pinned = manifest.dependencies[name];
    assert.match(pinned ?? "", /^\d+\.\d+\.\d+$/, `${name} must be pinned exactly, not a range`);
    const require = createRequire(path.join(packageDir, "package.json"));
    const installed = JSON.parse(
      readFileSync(
        path.join(path.dirname(require.resolve(name)), "..", "..", "package.json"),
        "utf8",
      ),
    ) as { name: string; version: string };
    assert.equal(installed.name, name);
    assert.equal(installed.version, pinned);
  });
}

test("parseTimeout reads grpc-timeout's units and refuses what is malformed or too long", () => {
  assert.deepEqual(parseTimeout(null, 60_000), {});
  assert.equal(parseTimeout("250m", 60_000).timeoutMs, 250);
  assert.equal(parseTimeout("2S", 60_000).timeoutMs, 2_000);
  assert.equal(parseTimeout("1M", 60_000).timeoutMs, 60_000);
  assert.equal(parseTimeout("1500u", 60_000).timeoutMs, 1.5);
  assert.equal(parseTimeout("2S", 60_000).error, undefined);
  assert.equal(parseTimeout("2 seconds", 60_000).error?.code, Code.InvalidArgument);
  assert.equal(parseTimeout("123456789m", 60_000).error?.code, Code.InvalidArgument);
  const tooLong = parseTimeout("2M", 60_000);
  assert.equal(tooLong.error?.code, Code.InvalidArgument);
  assert.equal(tooLong.timeoutMs, 120_000);
});

test("setTrailerStatus writes success, and an error's code, metadata and details", () => {
  assert.equal(setTrailerStatus(new Headers(), undefined).get("grpc-status"), "0");
  const trailer = setTrailerStatus(
    new Headers(),
    new ConnectError("refused: a=b/c", Code.FailedPrecondition, { "x-why": "because" }, [
      { desc: UserSchema, value: { id: "reason-1" } },
    ]),
  );
  assert.equal(trailer.get("grpc-status"), String(Code.FailedPrecondition));
  assert.equal(trailer.get("x-why"), "because");
  assert.ok(trailer.get("grpc-status-details-bin"), "the details go as google.rpc.Status");
  // grpc-message is set here too, but the runtime writes its own (encoded as the gRPC spec says).
  assert.ok(trailer.has("grpc-message"));
});

test("findTrailerError reads back the code, message and details setTrailerStatus wrote", () => {
  const trailer = setTrailerStatus(
    new Headers(),
    new ConnectError("refused", Code.FailedPrecondition, undefined, [
      { desc: UserSchema, value: { id: "reason-1", name: "the reason" } },
    ]),
  );
  const error = findTrailerError(trailer);
  assert.equal(error?.code, Code.FailedPrecondition);
  assert.equal(error?.rawMessage, "refused");
  assert.equal(error?.findDetails(UserSchema)[0]?.name, "the reason");
  assert.equal(findTrailerError(new Headers({ "grpc-status": "0" })), undefined);
  // Without details, the status comes from grpc-status and grpc-message alone.
  const plain = findTrailerError(new Headers({ "grpc-status": "5", "grpc-message": "gone" }));
  assert.equal(plain?.code, Code.NotFound);
  assert.equal(plain?.rawMessage, "gone");
});

test("Connect's parseTimeout reads connect-timeout-ms and refuses what is malformed or too long", () => {
  assert.deepEqual(parseConnectTimeout(null, 60_000), {});
  assert.equal(parseConnectTimeout("250", 60_000).timeoutMs, 250);
  assert.equal(parseConnectTimeout("250", 60_000).error, undefined);
  for (const malformed of ["-1", "1.5", "12345678901", "1s", ""]) {
    assert.equal(parseConnectTimeout(malformed, 60_000).error?.code, Code.InvalidArgument);
  }
  const tooLong = parseConnectTimeout("120000", 60_000);
  assert.equal(tooLong.error?.code, Code.InvalidArgument);
  assert.equal(tooLong.timeoutMs, 120_000);
});

test("the Connect and gRPC-web wire helpers write what the serving path sends", () => {
  assert.equal(codeToHttpStatus(Code.NotFound), 404);
  assert.equal(codeToHttpStatus(Code.DeadlineExceeded), 504);
  const error = new ConnectError("gone", Code.NotFound, undefined, [
    { desc: UserSchema, value: { id: "reason-1" } },
  ]);
  const json = JSON.parse(new TextDecoder().decode(errorToJsonBytes(error, {}))) as {
    code: string;
    message: string;
    details: { type: string; value: string }[];
  };
  assert.equal(json.code, "not_found");
  assert.equal(json.message, "gone");
  assert.equal(json.details[0]?.type, "shop.user.v1.User");
  const end = endStreamToJson(new Headers({ "x-trailer": "done" }), error, {});
  assert.deepEqual(end.metadata, { "x-trailer": ["done"] });
  assert.equal((end.error as { code?: string } | undefined)?.code, "not_found");
  assert.equal(endStreamFlag, 0b10);
  assert.equal(trailerFlag, 0x80);
  assert.equal(
    new TextDecoder().decode(trailerSerialize(new Headers({ "grpc-status": "0", "x-a": "b" }))),
    "grpc-status: 0\r\nx-a: b\r\n",
  );
  const merged = new Headers();
  mergeNonProtocolHeaders(merged, new Headers({ "x-why": "absent", "content-type": "a/b" }));
  assert.equal(merged.get("x-why"), "absent");
  assert.equal(merged.get("content-type"), null, "protocol headers are not merged");
});
