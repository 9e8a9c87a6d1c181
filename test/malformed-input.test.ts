// A corpus of malformed requests, at least 100 per protocol (Connect JSON, Connect binary, Connect
// GET, gRPC over h2c, gRPC-web), sent with raw node:http, node:http2 and node:net clients to the
// three services running as their own processes. Each case states the answer it must get; every
// answer comes within 1 s, never says `internal`, and shows no SQL, stack or path; the process is
// alive and healthy after each case, and its memory is back near where it started at the end.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, test } from "node:test";
import { brotliCompressSync, gzipSync, constants as zlibConstants } from "node:zlib";
import { readMetric, waitFor } from "@shop/testing";
import {
  envelope,
  internalDetail,
  memoryOf,
  outcomeOf,
  type RawRequest,
  type RawResponse,
  send,
  sendFirst,
  sendTcp,
  type WireProtocol,
} from "./support/raw-rpc.ts";
import { grpcHealthStatus, isAlive, type Shop, startShop, startTimeOf } from "./support/shop.ts";

type Family = "connect-json" | "connect-proto" | "connect-get" | "grpc" | "grpc-web" | "http";
type Target = "users" | "inventory" | "orders";

/** One malformed request and the answer it must get. */
interface Case {
  family: Family;
  name: string;
  target: Target;
  /** How the answer is read; raw TCP cases read the HTTP status line. */
  protocol: WireProtocol | "tcp";
  request: RawRequest | { tcp: Uint8Array | string };
  /** A Connect code name, `http <status>` or "closed"; one of several when the list has more. */
  expect: string | string[];
}

const maxMessageBytes = 4 * 1024 * 1024;

/** An RPC the corpus aims at, and one string field of its request (for invalid UTF-8). */
interface Rpc {
  target: Target;
  path: string;
  stringField: number;
  stringJson: string;
  /** An int32 or int64 field's JSON name, when the request has one. */
  numberJson?: string;
}

const rpcs = {
  getUser: {
    target: "users",
    path: "/shop.user.v1.UserService/GetUser",
    stringField: 1,
    stringJson: "id",
  },
  listUsers: {
    target: "users",
    path: "/shop.user.v1.UserService/ListUsers",
    stringField: 2,
    stringJson: "pageToken",
    numberJson: "pageSize",
  },
  createUser: {
    target: "users",
    path: "/shop.user.v1.UserService/CreateUser",
    stringField: 1,
    stringJson: "name",
  },
  updateUser: {
    target: "users",
    path: "/shop.user.v1.UserService/UpdateUser",
    stringField: 1,
    stringJson: "id",
    numberJson: "version",
  },
  getProduct: {
    target: "inventory",
    path: "/shop.inventory.v1.InventoryService/GetProduct",
    stringField: 1,
    stringJson: "sku",
  },
  listProducts: {
    target: "inventory",
    path: "/shop.inventory.v1.InventoryService/ListProducts",
    stringField: 2,
    stringJson: "pageToken",
    numberJson: "pageSize",
  },
  getOrder: {
    target: "orders",
    path: "/shop.order.v1.OrderService/GetOrder",
    stringField: 1,
    stringJson: "id",
  },
  listOrders: {
    target: "orders",
    path: "/shop.order.v1.OrderService/ListOrders",
    stringField: 3,
    stringJson: "pageToken",
    numberJson: "pageSize",
  },
} satisfies Record<string, Rpc>;

const watchUsers = "/shop.user.v1.UserService/WatchUsers";
const batchCreateUsers = "/shop.user.v1.UserService/BatchCreateUsers";
const getUser = rpcs.getUser.path;

// Bytes that are not a protobuf message of any type. Field 15 is unknown to every request here.
const brokenProto: [string, number[]][] = [
  ["truncated tag varint", [0x80]],
  ["truncated value varint", [0x08, 0xff]],
  ["varint longer than 10 bytes", [0x08, ...new Array<number>(11).fill(0xff), 0x01]],
  ["length past the end", [0x7a, 0x05, 0x61]],
  ["length of 4 GiB", [0x7a, 0xff, 0xff, 0xff, 0xff, 0x0f]],
  ["wire type 6", [0x7e, 0x01]],
  ["wire type 7", [0x7f, 0x01]],
  ["field number 0", [0x00, 0x00]],
  ["group never ended", [0x7b, 0x78, 0x01]],
  ["end group without start", [0x7c]],
  ["group ended by another field", [0x7b, 0x74]],
  ["truncated fixed32", [0x7d, 0x01, 0x02]],
  ["truncated fixed64", [0x79, 0x01, 0x02, 0x03]],
  ["100,000 nested groups", new Array<number>(100_000).fill(0x7b)],
  ["text, not protobuf", [...Buffer.from("GET / HTTP/1.1")]],
];

/** `brokenProto`, plus invalid UTF-8 in a string field of `rpc`. */
function brokenProtoFor(rpc: Rpc): [string, Buffer][] {
  return [
    ...brokenProto.map(([name, bytes]): [string, Buffer] => [name, Buffer.from(bytes)]),
    ["invalid UTF-8 in a string", Buffer.from([(rpc.stringField << 3) | 2, 2, 0xc3, 0x28])],
  ];
}

// Bodies that are not JSON, or not a JSON object.
const brokenJson: [string, string | Buffer][] = [
  ["empty body", ""],
  ["whitespace", "   "],
  ["open brace", "{"],
  ["close brace", "}"],
  ["open bracket", "["],
  ["key without value", '{"a":'],
  ["colon without value", '{"a":}'],
  ["missing colon", '{"a" "x"}'],
  ["single quotes", "{'a':'x'}"],
  ["unquoted key", '{a:"x"}'],
  ["trailing comma", '{"a":"x",}'],
  ["unterminated string", '{"a":"x'],
  ["extra close brace", '{"a":"x"}}'],
  ["two documents", '{"a":"x"} {}'],
  ["bad literal nul", "nul"],
  ["bad literal tru", "tru"],
  ["bad escape", '{"a":"\\x"}'],
  ["short unicode escape", '{"a":"\\u12"}'],
  ["raw newline in a string", '{"a":"a\nb"}'],
  ["NaN", '{"a":NaN}'],
  ["Infinity", '{"a":Infinity}'],
  ["undefined", '{"a":undefined}'],
  ["block comment", "/* c */ {}"],
  ["line comment", "{} // c"],
  ["leading zero", '{"a":01}'],
  ["lone minus", '{"a":-}'],
  ["trailing dot", '{"a":1.}'],
  ["leading dot", '{"a":.5}'],
  ["plus sign", '{"a":+1}'],
  ["NUL byte", "\u0000"],
  ["NUL after the value", '{"a":"x"}\u0000'],
  ["binary garbage", Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x9c, 0x7b])],
  ["null", "null"],
  ["array", "[]"],
  ["number", "1"],
  ["string", '"x"'],
  ["boolean", "true"],
  ["array of an object", "[{}]"],
  ["100,000 nested arrays", `${"[".repeat(100_000)}${"]".repeat(100_000)}`],
];

/** JSON objects whose fields of `rpc` have the wrong type or an impossible value. */
function wrongTypes(rpc: Rpc): [string, string][] {
  const text = rpc.stringJson;
  const cases: [string, string][] = [
    [`${text} is a number`, `{"${text}":5}`],
    [`${text} is a boolean`, `{"${text}":true}`],
    [`${text} is an array`, `{"${text}":["a"]}`],
    [`${text} is an object`, `{"${text}":{"a":1}}`],
    [`${text} is a float`, `{"${text}":1.5}`],
  ];
  const number = rpc.numberJson;
  if (number) {
    cases.push(
      [`${number} is a word`, `{"${number}":"abc"}`],
      [`${number} is a fraction`, `{"${number}":1.5}`],
      [`${number} is a boolean`, `{"${number}":true}`],
      [`${number} is an array`, `{"${number}":[1]}`],
      [`${number} is an object`, `{"${number}":{}}`],
      [`${number} overflows 64 bits`, `{"${number}":"99999999999999999999"}`],
      [`${number} is 1e400`, `{"${number}":1e400}`],
      [`${number} is a fraction in a string`, `{"${number}":"1.5"}`],
    );
  }
  return cases;
}

const json = { "content-type": "application/json" };
const proto = { "content-type": "application/proto" };
const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
const grpcWebHeaders = { "content-type": "application/grpc-web+proto" };

/** 100 MiB of one byte, gzipped to about 100 KiB: a decompression bomb. */
const gzipBomb = gzipSync(Buffer.alloc(100 * 1024 * 1024, 0x20), { level: 9 });
const brotliBomb = brotliCompressSync(Buffer.alloc(100 * 1024 * 1024, 0x20), {
  params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 },
});
/** 10 MiB gzipped, small enough for a URL. */
const smallGzipBomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20), { level: 9 });
const truncatedGzip = gzipSync(Buffer.from('{"id":"x"}')).subarray(0, 12);
// A body over the limit, sent whole over HTTP/1.1: the server answers resource_exhausted and reads
// on to keep the connection (RFC 9112, section 9.6), but a client still sending when the server
// gives up on the rest may see the connection close before it reads the answer: both are fine.
const oversizedOverHttp1 = ["resource_exhausted", "closed"];
const oversizedJson = Buffer.from(`{"id":"${"x".repeat(maxMessageBytes + 16)}"}`);
const oversizedProto = Buffer.concat([
  Buffer.from([0x0a, 0x90, 0x80, 0x80, 0x02]),
  Buffer.alloc(maxMessageBytes + 16, 0x61),
]);
const hugeHeader = { "x-filler": "a".repeat(200 * 1024) };
const manyHeaders = Object.fromEntries(
  Array.from({ length: 1_500 }, (_, i) => [`x-filler-${i}`, "v".repeat(100)]),
);

const badConnectTimeouts = ["abc", "-1", "1.5", "12345678901", "", "1e3", "0x10", "400000"];
const badGrpcTimeouts = ["1x", "S", "123456789S", "-1S", "1.5S", "", "1 S", "99999999H"];

function connectJsonCases(): Case[] {
  const cases: Case[] = [];
  const family = "connect-json";
  const targets = [rpcs.getUser, rpcs.listUsers, rpcs.createUser, rpcs.updateUser];
  for (const rpc of targets) {
    for (const [index, [name, body]] of brokenJson.entries()) {
      cases.push({
        family,
        name: `${rpc.path}: ${name}`,
        target: rpc.target,
        protocol: "connect",
        // Every third over h2c: the same port speaks both.
        request: { http: index % 3 === 0 ? "2" : "1.1", path: rpc.path, headers: json, body },
        expect: "invalid_argument",
      });
    }
  }
  for (const rpc of Object.values(rpcs)) {
    for (const [name, body] of wrongTypes(rpc)) {
      cases.push({
        family,
        name: `${rpc.path}: ${name}`,
        target: rpc.target,
        protocol: "connect",
        request: { http: "1.1", path: rpc.path, headers: json, body },
        expect: "invalid_argument",
      });
    }
  }
  for (const rpc of [rpcs.getProduct, rpcs.getOrder, rpcs.listOrders]) {
    for (const [name, body] of brokenJson.slice(0, 12)) {
      cases.push({
        family,
        name: `${rpc.path}: ${name}`,
        target: rpc.target,
        protocol: "connect",
        request: { http: "1.1", path: rpc.path, headers: json, body },
        expect: "invalid_argument",
      });
    }
  }
  const getUserJson = (
    name: string,
    request: Partial<RawRequest>,
    expect: string | string[],
    target: Target = "users",
  ) =>
    cases.push({
      family,
      name,
      target,
      protocol: "connect",
      request: { http: "1.1", path: getUser, headers: json, body: '{"id":"x"}', ...request },
      expect,
    });
  for (const contentType of [
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin1",
    "application/connect+json",
    "application/jsonx",
    "json",
  ]) {
    getUserJson(
      `content-type ${contentType}`,
      { headers: { "content-type": contentType } },
      "http 415",
    );
  }
  getUserJson("no content-type", { headers: {} }, "http 415");
  for (const method of ["PUT", "DELETE", "PATCH"]) {
    // With a content-length: node:http frames no body of a DELETE otherwise.
    getUserJson(
      `HTTP method ${method}`,
      { method, headers: { ...json, "content-length": "10" } },
      "http 405",
    );
  }
  for (const path of [
    "/shop.user.v1.UserService/NoSuchMethod",
    "/shop.user.v1.NoSuchService/GetUser",
    "/shop.user.v1.UserService/getUser",
    "/shop.user.v1.UserService/GetUser/",
    "/shop.user.v1.UserService%2FGetUser",
    "/../../etc/passwd",
    `/shop.user.v1.UserService/${"A".repeat(8_000)}`,
    "/",
  ]) {
    getUserJson(`path ${path.slice(0, 60)}`, { path }, "http 404");
  }
  for (const value of badConnectTimeouts) {
    getUserJson(
      `connect-timeout-ms "${value}"`,
      { headers: { ...json, "connect-timeout-ms": value } },
      "invalid_argument",
    );
  }
  getUserJson("a 200 KiB header", { headers: { ...json, ...hugeHeader } }, "http 431");
  getUserJson("1,500 headers, 150 KiB", { headers: { ...json, ...manyHeaders } }, "http 431");
  getUserJson(
    "a 200 KiB header over h2c",
    { http: "2", headers: { ...json, ...hugeHeader } },
    "closed",
  );
  getUserJson("a message over the limit", { body: oversizedJson }, oversizedOverHttp1);
  getUserJson(
    "a message over the limit over h2c",
    { http: "2", body: oversizedJson },
    "resource_exhausted",
  );
  getUserJson(
    "content-length over the limit",
    { headers: { ...json, "content-length": String(maxMessageBytes + 1) }, body: "{}" },
    ["resource_exhausted", "closed"],
  );
  getUserJson(
    "gzip bomb",
    { headers: { ...json, "content-encoding": "gzip" }, body: gzipBomb },
    "resource_exhausted",
  );
  getUserJson(
    "gzip bomb over h2c",
    { http: "2", headers: { ...json, "content-encoding": "gzip" }, body: gzipBomb },
    "resource_exhausted",
  );
  getUserJson(
    "brotli bomb",
    { headers: { ...json, "content-encoding": "br" }, body: brotliBomb },
    "resource_exhausted",
  );
  getUserJson(
    "gzip that is not gzip",
    { headers: { ...json, "content-encoding": "gzip" } },
    "invalid_argument",
  );
  getUserJson(
    "truncated gzip",
    { headers: { ...json, "content-encoding": "gzip" }, body: truncatedGzip },
    "invalid_argument",
  );
  getUserJson(
    "unknown content-encoding",
    { headers: { ...json, "content-encoding": "snappy" } },
    "unimplemented",
  );
  getUserJson(
    "a list of content-encodings",
    { headers: { ...json, "content-encoding": "gzip, br" } },
    "unimplemented",
  );
  getUserJson(
    "100,000 nested arrays in an unknown field",
    { body: `{"id":"x","zz":${"[".repeat(100_000)}${"]".repeat(100_000)}}` },
    // Decoded past the unknown field, then refused by the contract's rule: "x" is no user id.
    "invalid_argument",
  );
  getUserJson(
    "100,000 nested arrays in a known field",
    { body: `{"id":${"[".repeat(100_000)}${"]".repeat(100_000)}}` },
    "invalid_argument",
  );
  getUserJson(
    "a prototype-polluting key",
    { body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"id":"x"}' },
    "invalid_argument",
  );
  getUserJson(
    "a NUL character in a stored string",
    { path: rpcs.createUser.path, body: '{"name":"a\\u0000b","email":"nul@example.com"}' },
    "invalid_argument",
  );
  getUserJson(
    "a lone surrogate in a string",
    { path: rpcs.createUser.path, body: '{"name":"\\ud800","email":"surrogate@example.com"}' },
    "invalid_argument",
  );
  getUserJson(
    "a NUL character in a SKU",
    { path: rpcs.getProduct.path, body: '{"sku":"MUG\\u0000"}' },
    ["invalid_argument", "not_found"],
    "inventory",
  );
  getUserJson(
    "a NUL character in a request id",
    {
      path: "/shop.order.v1.OrderService/CreateOrder",
      body: '{"userId":"x","items":[{"sku":"MUG","quantity":"1"}],"requestId":"r\\u0000"}',
    },
    ["invalid_argument", "failed_precondition"],
    "orders",
  );
  getUserJson(
    "an int64 quantity beyond the database's integer",
    {
      path: "/shop.order.v1.OrderService/CreateOrder",
      body: '{"userId":"x","items":[{"sku":"MUG","quantity":"9223372036854775807"}]}',
    },
    ["invalid_argument", "failed_precondition"],
    "orders",
  );
  // Streaming RPCs over Connect: the same mistakes inside the envelope.
  const stream = (name: string, request: Partial<RawRequest>, expect: string) =>
    cases.push({
      family,
      name: `streaming: ${name}`,
      target: "users",
      protocol: "connect-stream",
      request: {
        http: "1.1",
        path: batchCreateUsers,
        headers: { "content-type": "application/connect+json" },
        body: envelope("{}"),
        ...request,
      },
      expect,
    });
  for (const [name, body] of brokenJson.slice(0, 12)) {
    stream(name, { body: envelope(body) }, "invalid_argument");
    stream(
      `${name}, server streaming`,
      { path: watchUsers, body: envelope(body) },
      "invalid_argument",
    );
  }
  stream("truncated envelope header", { body: Buffer.from([0, 0, 0]) }, "invalid_argument");
  stream("truncated envelope", { body: envelope("{}", 0, 10) }, "invalid_argument");
  stream("length prefix 0xFFFFFFFF", { body: envelope("{}", 0, 0xffffffff) }, "resource_exhausted");
  // The Connect and gRPC specifications (and their conformance suites) make this `internal`.
  stream("compressed flag, no encoding", { body: envelope("{}", 1) }, "internal");
  stream(
    "gzip bomb in an envelope",
    {
      headers: { "content-type": "application/connect+json", "connect-content-encoding": "gzip" },
      body: envelope(gzipBomb, 1),
    },
    "resource_exhausted",
  );
  stream(
    "unknown connect-content-encoding",
    {
      headers: {
        "content-type": "application/connect+json",
        "connect-content-encoding": "snappy",
      },
      body: envelope("{}", 1),
    },
    "unimplemented",
  );
  stream("unary content type", { headers: json }, "http 415");
  stream(
    "negative start revision",
    { path: watchUsers, body: envelope('{"startRevision":"-5"}') },
    "invalid_argument",
  );
  stream(
    "start revision is a word",
    { path: watchUsers, body: envelope('{"startRevision":"soon"}') },
    "invalid_argument",
  );
  return cases;
}

function connectProtoCases(): Case[] {
  const cases: Case[] = [];
  const family = "connect-proto";
  for (const rpc of Object.values(rpcs)) {
    for (const [index, [name, body]] of brokenProtoFor(rpc).entries()) {
      cases.push({
        family,
        name: `${rpc.path}: ${name}`,
        target: rpc.target,
        protocol: "connect",
        request: { http: index % 4 === 0 ? "2" : "1.1", path: rpc.path, headers: proto, body },
        expect: "invalid_argument",
      });
    }
  }
  const getUserProto = (name: string, request: Partial<RawRequest>, expect: string | string[]) =>
    cases.push({
      family,
      name,
      target: "users",
      protocol: "connect",
      request: {
        http: "1.1",
        path: getUser,
        headers: proto,
        body: Buffer.from([0x0a, 1, 0x78]),
        ...request,
      },
      expect,
    });
  for (const contentType of [
    "application/protobuf",
    "application/x-protobuf",
    "application/proto+xml",
  ]) {
    getUserProto(
      `content-type ${contentType}`,
      { headers: { "content-type": contentType } },
      "http 415",
    );
  }
  getUserProto("a message over the limit", { body: oversizedProto }, oversizedOverHttp1);
  getUserProto(
    "gzip bomb",
    { headers: { ...proto, "content-encoding": "gzip" }, body: gzipBomb },
    "resource_exhausted",
  );
  getUserProto(
    "truncated gzip",
    { headers: { ...proto, "content-encoding": "gzip" }, body: truncatedGzip },
    "invalid_argument",
  );
  getUserProto(
    "unknown content-encoding",
    { headers: { ...proto, "content-encoding": "lz4" } },
    "unimplemented",
  );
  for (const value of badConnectTimeouts.slice(0, 4)) {
    getUserProto(
      `connect-timeout-ms "${value}"`,
      { headers: { ...proto, "connect-timeout-ms": value } },
      "invalid_argument",
    );
  }
  const stream = (name: string, path: string, body: Buffer, expect: string) =>
    cases.push({
      family,
      name: `streaming ${path.split("/").at(-1)}: ${name}`,
      target: "users",
      protocol: "connect-stream",
      request: {
        http: "1.1",
        path,
        headers: { "content-type": "application/connect+proto" },
        body,
      },
      expect,
    });
  for (const [name, bytes] of brokenProtoFor(rpcs.getUser).slice(0, 8)) {
    stream(name, batchCreateUsers, envelope(bytes), "invalid_argument");
    stream(name, watchUsers, envelope(bytes), "invalid_argument");
  }
  stream("truncated envelope", batchCreateUsers, envelope("", 0, 3), "invalid_argument");
  stream("length prefix 0xFFFFFFFF", watchUsers, envelope("", 0, 0xffffffff), "resource_exhausted");
  stream(
    "compressed flag, no encoding",
    watchUsers,
    envelope(gzipSync(Buffer.from([0x08, 0x01])), 1),
    "internal",
  );
  return cases;
}

function connectGetCases(): Case[] {
  const cases: Case[] = [];
  const family = "connect-get";
  const get = (
    name: string,
    rpc: Rpc,
    query: string,
    expect: string | string[],
    request: Partial<RawRequest> = {},
  ) =>
    cases.push({
      family,
      name: `GET ${rpc.path}: ${name}`,
      target: rpc.target,
      protocol: "connect",
      request: { http: "1.1", method: "GET", path: `${rpc.path}?${query}`, ...request },
      expect,
    });
  for (const rpc of [rpcs.getUser, rpcs.listUsers]) {
    for (const [name, body] of brokenJson) {
      // Binary bodies do not fit a query, and 200 KB of brackets exceed the header limit (below).
      if (typeof body !== "string" || body.length > 10_000) continue;
      get(name, rpc, `encoding=json&message=${encodeURIComponent(body)}`, "invalid_argument");
    }
  }
  for (const rpc of [rpcs.getUser, rpcs.listProducts, rpcs.getOrder]) {
    for (const [name, bytes] of brokenProtoFor(rpc)) {
      if (bytes.length > 1_000) continue;
      get(
        `${name} (base64)`,
        rpc,
        `encoding=proto&base64=1&message=${bytes.toString("base64url")}`,
        "invalid_argument",
      );
    }
  }
  const user = rpcs.getUser;
  get("no encoding", user, "message=%7B%7D", "http 415");
  get("encoding xml", user, "encoding=xml&message=%7B%7D", "http 415");
  get("invalid base64", user, "encoding=proto&base64=1&message=!!!!", "invalid_argument");
  get("base64 of one character", user, "encoding=proto&base64=1&message=A", "invalid_argument");
  get(
    "unknown compression",
    user,
    "encoding=json&compression=snappy&message=%7B%7D",
    "unimplemented",
  );
  get(
    "gzip that is not gzip",
    user,
    `encoding=json&compression=gzip&base64=1&message=${Buffer.from("{}").toString("base64url")}`,
    "invalid_argument",
  );
  get(
    "truncated gzip",
    user,
    `encoding=json&compression=gzip&base64=1&message=${truncatedGzip.toString("base64url")}`,
    "invalid_argument",
  );
  get(
    "gzip bomb",
    user,
    `encoding=json&compression=gzip&base64=1&message=${smallGzipBomb.toString("base64url")}`,
    "resource_exhausted",
  );
  get(
    "a query over the header limit",
    user,
    `encoding=json&message=${"a".repeat(200 * 1024)}`,
    "http 431",
  );
  get(
    "connect version v2",
    user,
    "encoding=json&message=%7B%22id%22%3A5%7D&connect=v2",
    "invalid_argument",
  );
  for (const value of badConnectTimeouts.slice(0, 4)) {
    get(`connect-timeout-ms "${value}"`, user, "encoding=json&message=%7B%7D", "invalid_argument", {
      headers: { "connect-timeout-ms": value },
    });
  }
  get("on an RPC with side effects", rpcs.createUser, "encoding=json&message=%7B%7D", "http 405");
  get("on an RPC with side effects", rpcs.updateUser, "encoding=json&message=%7B%7D", "http 405");
  cases.push({
    family,
    name: "GET on a streaming RPC",
    target: "users",
    protocol: "connect",
    request: { http: "1.1", method: "GET", path: `${watchUsers}?encoding=json&message=%7B%7D` },
    expect: "http 405",
  });
  return cases;
}

function grpcCases(family: "grpc" | "grpc-web"): Case[] {
  const cases: Case[] = [];
  const headers = family === "grpc" ? grpcHeaders : grpcWebHeaders;
  // gRPC runs over HTTP/2; gRPC-web mostly over HTTP/1.1, as browsers send it.
  const httpOf = (index: number): "1.1" | "2" =>
    family === "grpc" ? "2" : index % 4 === 0 ? "2" : "1.1";
  for (const rpc of Object.values(rpcs)) {
    for (const [index, [name, bytes]] of brokenProtoFor(rpc).entries()) {
      cases.push({
        family,
        name: `${rpc.path}: ${name}`,
        target: rpc.target,
        protocol: family,
        request: { http: httpOf(index), path: rpc.path, headers, body: envelope(bytes) },
        expect: "invalid_argument",
      });
    }
  }
  const call = (
    name: string,
    request: Partial<RawRequest>,
    expect: string | string[],
    target: Target = "users",
  ) =>
    cases.push({
      family,
      name,
      target,
      protocol: family,
      request: {
        http: httpOf(1),
        path: getUser,
        headers,
        body: envelope(Buffer.from([0x0a, 1, 0x78])),
        ...request,
      },
      expect,
    });
  call("truncated envelope header", { body: Buffer.from([0, 0, 0]) }, "invalid_argument");
  call(
    "truncated envelope",
    { body: envelope(Buffer.from([0x0a, 1, 0x78]), 0, 10) },
    "invalid_argument",
  );
  call("length prefix 0xFFFFFFFF", { body: envelope("", 0, 0xffffffff) }, "resource_exhausted");
  call("length prefix 0x7FFFFFFF", { body: envelope("", 0, 0x7fffffff) }, "resource_exhausted");
  call(
    "length prefix one over the limit",
    { body: envelope("", 0, maxMessageBytes + 1) },
    "resource_exhausted",
  );
  call(
    "a message over the limit",
    { body: envelope(oversizedProto) },
    httpOf(1) === "2" ? "resource_exhausted" : oversizedOverHttp1,
  );
  call("no message", { body: "" }, "unimplemented");
  call("two messages", { body: Buffer.concat([envelope(""), envelope("")]) }, "unimplemented");
  call(
    "compressed flag, no encoding",
    { body: envelope(gzipSync(Buffer.from([0x0a, 1, 0x78])), 1) },
    "internal",
  );
  const encoding = "grpc-encoding";
  call(
    "gzip bomb",
    { headers: { ...headers, [encoding]: "gzip" }, body: envelope(gzipBomb, 1) },
    "resource_exhausted",
  );
  call(
    "brotli bomb",
    { headers: { ...headers, [encoding]: "br" }, body: envelope(brotliBomb, 1) },
    "resource_exhausted",
  );
  call(
    "gzip that is not gzip",
    { headers: { ...headers, [encoding]: "gzip" }, body: envelope("not gzip", 1) },
    "invalid_argument",
  );
  call(
    "truncated gzip",
    { headers: { ...headers, [encoding]: "gzip" }, body: envelope(truncatedGzip, 1) },
    "invalid_argument",
  );
  call(
    "unknown grpc-encoding",
    { headers: { ...headers, [encoding]: "snappy" }, body: envelope("x", 1) },
    "unimplemented",
  );
  for (const value of badGrpcTimeouts) {
    call(
      `grpc-timeout "${value}"`,
      { headers: { ...headers, "grpc-timeout": value } },
      "invalid_argument",
    );
  }
  const contentTypes =
    family === "grpc"
      ? ["application/grpc+xml", "application/grpc+thrift", "application/grpcx", "text/plain"]
      : [
          "application/grpc-web+xml",
          "application/grpc-web-text",
          "application/grpc-webx",
          "text/plain",
        ];
  for (const contentType of contentTypes) {
    call(`content-type ${contentType}`, { headers: { "content-type": contentType } }, "http 415");
  }
  call("no content-type", { headers: {} }, "http 415");
  call("HTTP method PUT", { method: "PUT" }, "http 405");
  call("unknown method", { path: "/shop.user.v1.UserService/NoSuchMethod" }, "http 404");
  call("unknown service", { path: "/shop.nothing.v1.Nothing/GetUser" }, "http 404");
  call(
    "a 200 KiB header",
    { headers: { ...headers, ...hugeHeader } },
    family === "grpc" ? "closed" : "http 431",
  );
  call(
    "1,500 headers, 150 KiB",
    { headers: { ...headers, ...manyHeaders } },
    family === "grpc" ? "closed" : "http 431",
  );
  call(
    "JSON codec, broken JSON",
    {
      headers: {
        ...headers,
        "content-type": `${headers["content-type"].replace("+proto", "")}+json`,
      },
      body: envelope('{"id":'),
    },
    "invalid_argument",
  );
  call(
    "JSON codec, wrong type",
    {
      headers: {
        ...headers,
        "content-type": `${headers["content-type"].replace("+proto", "")}+json`,
      },
      body: envelope('{"id":[1]}'),
    },
    "invalid_argument",
  );
  for (const [name, bytes] of brokenProtoFor(rpcs.getUser).slice(0, 6)) {
    call(
      `server streaming: ${name}`,
      { path: watchUsers, body: envelope(bytes) },
      "invalid_argument",
    );
    call(
      `client streaming: ${name}`,
      { path: batchCreateUsers, body: envelope(bytes) },
      "invalid_argument",
    );
  }
  call(
    "bidi streaming: broken message",
    // Over HTTP/2: bidirectional streams need it.
    {
      http: "2",
      path: "/shop.order.v1.OrderService/TrackOrders",
      body: envelope(Buffer.from([0x0a, 0x05])),
    },
    "invalid_argument",
    "orders",
  );
  return cases;
}

// HTTP/1.1 and HTTP/2 framing that no HTTP client library would send.
function framingCases(): Case[] {
  const raw = (name: string, tcp: string | Buffer, expect: string | string[]): Case => ({
    family: "http",
    name,
    target: "users",
    protocol: "tcp",
    request: { tcp },
    expect,
  });
  const head = `POST ${getUser} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n`;
  const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  return [
    raw(
      "content-length and chunked",
      `${head}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
      "http 400",
    ),
    raw(
      "invalid chunk size",
      `${head}transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      "http 400",
    ),
    raw("negative content-length", `${head}content-length: -1\r\n\r\n{}`, "http 400"),
    raw(
      "two content-lengths",
      `${head}content-length: 2\r\ncontent-length: 3\r\n\r\n{}`,
      "http 400",
    ),
    raw("a NUL in a header", `${head}x-bad: a\u0000b\r\n\r\n`, "http 400"),
    raw("a header without a colon", `${head}no colon here\r\n\r\n`, "http 400"),
    raw("garbage request line", "\u0001\u0002\u0003 garbage\r\n\r\n", "http 400"),
    raw("an unknown HTTP version", `GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n`, [
      "http 400",
      "http 505",
    ]),
    raw("the h2 preface, then garbage", `${preface}garbage that is not a frame`, "closed"),
    raw(
      "the h2 preface, then a frame 16 MiB long",
      Buffer.concat([
        Buffer.from(preface),
        Buffer.from([0xff, 0xff, 0xff, 0x00, 0x00, 0, 0, 0, 0]),
      ]),
      "closed",
    ),
    raw(
      "TLS client hello to a server without TLS",
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0]),
      "closed",
    ),
  ];
}

const corpus: Case[] = [
  ...connectJsonCases(),
  ...connectProtoCases(),
  ...connectGetCases(),
  ...grpcCases("grpc"),
  ...grpcCases("grpc-web"),
  ...framingCases(),
];

let shop: Shop;
const memoryBaselines = new Map<Target, { rss: number; heap: number }>();
before(async () => {
  shop = await startShop();
});
after(async () => {
  await shop?.stop();
});

function urlOf(target: Target): string {
  return shop[target].url;
}

function portOf(target: Target): number {
  return shop[target].port;
}

/** Reads the status line of a raw HTTP/1.1 answer: `http <status>`, or "closed" when none came. */
function tcpOutcome(received: Buffer): string {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(received.toString("latin1"));
  return match ? `http ${match[1]}` : "closed";
}

test("the corpus has at least 100 malformed requests per protocol", () => {
  const counts = new Map<Family, number>();
  for (const c of corpus) counts.set(c.family, (counts.get(c.family) ?? 0) + 1);
  for (const family of [
    "connect-json",
    "connect-proto",
    "connect-get",
    "grpc",
    "grpc-web",
  ] as const) {
    assert.ok((counts.get(family) ?? 0) >= 100, `${family}: ${counts.get(family)} cases`);
  }
  console.log(`# corpus: ${JSON.stringify(Object.fromEntries(counts))}`);
});

test("each malformed request gets its stated answer within 1 s, and no service falls over", async () => {
  const targets: Target[] = ["users", "inventory", "orders"];
  const started = new Map<Target, number>();
  for (const target of targets) {
    started.set(target, await startTimeOf(urlOf(target)));
    // Warm up (pools, JIT, lazily loaded code) before the memory baseline.
    for (let i = 0; i < 50; i++) {
      await send(portOf(target), {
        http: "1.1",
        path:
          target === "users"
            ? getUser
            : target === "inventory"
              ? rpcs.getProduct.path
              : rpcs.getOrder.path,
        headers: json,
        body: "{}",
      });
    }
    memoryBaselines.set(target, await memoryOf(urlOf(target)));
  }

  const failures: string[] = [];
  for (const c of corpus) {
    const label = `[${c.family}] ${c.target} ${c.name}`;
    let outcome: string;
    let message = "";
    let ms: number;
    let body = "";
    if (c.protocol === "tcp") {
      const { received, ms: elapsed } = await sendTcp(
        portOf(c.target),
        (c.request as { tcp: string }).tcp,
        3_000,
      );
      outcome = tcpOutcome(received);
      ms = elapsed;
      body = received.toString("latin1");
    } else {
      const response: RawResponse = await send(portOf(c.target), c.request as RawRequest, 3_000);
      const result = outcomeOf(c.protocol, response);
      outcome = result.label;
      message = result.message;
      ms = result.ms;
      body = response.body.toString("latin1");
    }
    const expected = Array.isArray(c.expect) ? c.expect : [c.expect];
    if (!expected.includes(outcome)) {
      failures.push(`${label}: expected ${expected.join(" or ")}, got ${outcome} ${message}`);
    }
    if (ms > 1_000) failures.push(`${label}: answered after ${Math.round(ms)} ms`);
    if (internalDetail.test(message) || internalDetail.test(body)) {
      failures.push(`${label}: internal detail in the answer: ${message || body.slice(0, 200)}`);
    }
    if (!(await isAlive(urlOf(c.target)))) {
      failures.push(`${label}: the ${c.target} process no longer answers /healthz`);
      break;
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${corpus.length} cases failed`);

  for (const target of targets) {
    const url = urlOf(target);
    assert.equal(await startTimeOf(url), started.get(target), `${target} was restarted`);
    assert.equal(await grpcHealthStatus(url), 1, `${target} is not SERVING`);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200, `${target} is not ready`);
    await ready.body?.cancel();
  }
});

test("streams a client abandons hold no memory, count as canceled, and never end the process", async () => {
  const { users, orders } = shop;
  const batch = { rpc_service: "shop.user.v1.UserService", rpc_method: "BatchCreateUsers" };
  const track = { rpc_service: "shop.order.v1.OrderService", rpc_method: "TrackOrders" };
  const count = (url: string, labels: Record<string, string>) =>
    readMetric(url, "rpc_server_duration_seconds_count", labels);
  const startedAt = { users: await startTimeOf(users.url), orders: await startTimeOf(orders.url) };
  const before = {
    started: await readMetric(users.url, "rpc_server_started_total", batch),
    canceled: await count(users.url, { ...batch, code: "canceled" }),
    // Earlier cases answer `internal` on purpose (a message flagged compressed without encoding).
    internal: await count(users.url, { ...batch, code: "internal" }),
    memory: await memoryOf(users.url),
  };

  // 400 client streams, 100 per connection, each sending only the 5-byte header of a message it
  // says is almost 4 MiB long. Buffers of the announced size would hold 1.6 GiB.
  const sessions: http2.ClientHttp2Session[] = [];
  for (let s = 0; s < 4; s++) {
    const session = http2.connect(users.url);
    session.on("error", () => {});
    sessions.push(session);
    for (let i = 0; i < 100; i++) {
      const stream = session.request({
        ":method": "POST",
        ":path": batchCreateUsers,
        ...grpcHeaders,
      });
      stream.on("error", () => {});
      stream.write(envelope("", 0, maxMessageBytes - 16));
    }
  }
  await waitFor(
    async () =>
      (await readMetric(users.url, "rpc_server_started_total", batch)) >= before.started + 400,
    { timeoutMs: 10_000, message: "the 400 streams did not all start" },
  );
  const during = await memoryOf(users.url);
  const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);
  console.log(
    `# 400 announced 4 MiB messages: heap+external ${mib(before.memory.heap)} -> ${mib(during.heap)} MiB`,
  );
  assert.ok(
    during.heap < before.memory.heap + 256 * 1024 * 1024,
    `heap+external grew from ${mib(before.memory.heap)} to ${mib(during.heap)} MiB`,
  );
  for (const session of sessions) session.destroy();
  await waitFor(
    async () => (await count(users.url, { ...batch, code: "canceled" })) >= before.canceled + 400,
    { timeoutMs: 10_000, message: "the abandoned streams did not end as canceled" },
  );
  assert.equal(await count(users.url, { ...batch, code: "internal" }), before.internal);

  // 50 bidirectional streams, each cancelled as soon as its first response arrives.
  const addOrder = Buffer.concat([Buffer.from([0x0a, 36]), Buffer.from(crypto.randomUUID())]);
  for (let i = 0; i < 50; i++) {
    const outcome = await sendFirst(orders.port, {
      protocol: "grpc",
      path: "/shop.order.v1.OrderService/TrackOrders",
      headers: grpcHeaders,
      body: envelope(addOrder),
      endRequest: false,
    });
    assert.equal(outcome.label, "message", `TrackOrders ${i}: ${outcome.message}`);
  }
  await waitFor(async () => (await count(orders.url, { ...track, code: "canceled" })) >= 50, {
    timeoutMs: 10_000,
    message: "the cancelled TrackOrders streams did not end as canceled",
  });
  assert.equal(await count(orders.url, { ...track, code: "internal" }), 0);

  for (const target of ["users", "orders"] as const) {
    assert.ok(await isAlive(shop[target].url), `${target} no longer answers`);
    assert.equal(await startTimeOf(shop[target].url), startedAt[target], `${target} restarted`);
  }
});

test("memory is back near its baseline after the corpus", async () => {
  // Checked last, after every case and stream above; the margin allows for garbage not yet collected
  // and V8 keeping freed pages, but not for the 4 MiB messages and 100 MiB bombs to be retained.
  for (const target of ["users", "inventory", "orders"] as const) {
    const url = urlOf(target);
    const limit = { heap: 64 * 1024 * 1024, rss: 192 * 1024 * 1024 };
    const base = memoryBaselines.get(target);
    assert.ok(base, `no baseline for ${target}`);
    let now = await memoryOf(url);
    const deadline = Date.now() + 15_000;
    while (
      (now.heap > base.heap + limit.heap || now.rss > base.rss + limit.rss) &&
      Date.now() < deadline
    ) {
      // Light traffic gives the collector the allocations it waits for.
      await Promise.all(Array.from({ length: 20 }, () => isAlive(url)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      now = await memoryOf(url);
    }
    const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
    console.log(
      `# ${target}: heap+external ${mib(base.heap)} -> ${mib(now.heap)}, rss ${mib(base.rss)} -> ${mib(now.rss)}`,
    );
    assert.ok(
      now.heap <= base.heap + limit.heap,
      `${target} heap ${mib(base.heap)} -> ${mib(now.heap)}`,
    );
    assert.ok(now.rss <= base.rss + limit.rss, `${target} rss ${mib(base.rss)} -> ${mib(now.rss)}`);
  }
});
