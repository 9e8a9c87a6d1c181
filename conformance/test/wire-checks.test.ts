// The runner fails what the official reference client reports as wire feedback: a server that
// answers with the right messages but malformed framing (an error JSON with unknown keys or padded
// base64, gRPC-web trailers with bare LF and capitals, HTTP trailers on a Connect response) does not
// pass. The control passing everything proves little unless the runner can fail a server.
import assert from "node:assert/strict";
import { once } from "node:events";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { UnaryResponseSchema } from "@shop/api/connectrpc/conformance/v1/service_pb";
import { check } from "../src/runner/check.ts";
import { connectTo, send, type TargetConnections } from "../src/runner/client.ts";
import { expandAll, loadSuites, type Permutation } from "../src/runner/suites.ts";
import type { ConformanceTarget } from "../src/target.ts";

const { permutations } = expandAll(loadSuites().filter((s) => s.file === "basic.yaml"));
const perm = (protocol: string): Permutation => {
  const name = `Basic/HTTPVersion:1/Protocol:${protocol}/Codec:CODEC_PROTO/Compression:COMPRESSION_IDENTITY/TLS:false/unary/success`;
  const found = permutations.find((p) => p.name === name);
  assert.ok(found, name);
  return found;
};

let answer: (res: http.ServerResponse) => void = (res) => res.end();
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => answer(res));
});
let connections: TargetConnections;

before(async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const target: ConformanceTarget = {
    name: "misbehaving server",
    cleartextUrl: `http://127.0.0.1:${port}`,
    httpVersions: { cleartext: [1], tls: [] },
    maxReceiveBytes: 1 << 20,
    verifiesClientCerts: false,
    close: async () => undefined,
  };
  connections = connectTo(target);
});
after(() => {
  connections.close();
  server.close();
});

function frame(flags: number, data: Uint8Array): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(data.length, 1);
  return Buffer.concat([prefix, data]);
}

const responseBytes = toBinary(
  UnaryResponseSchema,
  create(UnaryResponseSchema, { payload: { data: Buffer.from("test response") } }),
);

test("a Connect error JSON with an unknown key and padded base64 details fails", async () => {
  answer = (res) => {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        code: "unauthenticated",
        message: "no",
        details: [{ type: "foo.Bar", value: "AA==" }],
        extra: 1,
      }),
    );
  };
  const p = perm("PROTOCOL_CONNECT");
  const errors = check(p, await send(connections, p)).join("\n");
  assert.match(errors, /invalid key "extra"/);
  assert.match(errors, /not valid unpadded base64/);
});

test("HTTP trailers on a Connect unary response fail", async () => {
  answer = (res) => {
    res.writeHead(200, { "content-type": "application/proto", trailer: "x-late" });
    res.write(responseBytes);
    res.addTrailers({ "x-late": "1" });
    res.end();
  };
  const p = perm("PROTOCOL_CONNECT");
  const errors = check(p, await send(connections, p)).join("\n");
  assert.match(errors, /HTTP trailers but should not have any/);
});

test("gRPC-web trailers with bare LF line endings and capitals fail", async () => {
  answer = (res) => {
    res.writeHead(200, { "content-type": "application/grpc-web+proto" });
    res.end(
      Buffer.concat([
        frame(0, responseBytes),
        frame(0x80, Buffer.from("Grpc-Status: 0\nx-custom-trailer: bing\n")),
      ]),
    );
  };
  const p = perm("PROTOCOL_GRPC_WEB");
  const errors = check(p, await send(connections, p)).join("\n");
  assert.match(errors, /non-lower-case field key: "Grpc-Status"/);
  assert.match(errors, /LF line ending instead of CRLF/);
});

test("a well-framed gRPC-web answer with wrong content still fails on content", async () => {
  answer = (res) => {
    res.writeHead(200, { "content-type": "application/grpc-web+proto", "x-custom-header": "foo" });
    res.end(
      Buffer.concat([
        frame(0, responseBytes),
        frame(0x80, Buffer.from("grpc-status: 0\r\nx-custom-trailer: bing\r\n")),
      ]),
    );
  };
  const p = perm("PROTOCOL_GRPC_WEB");
  const errors = check(p, await send(connections, p));
  // The data is right, but nothing of the request was echoed back.
  assert.deepEqual(
    errors.filter((e) => !/request/.test(e)),
    [],
  );
  assert.ok(errors.some((e) => /request headers|request messages/.test(e)));
});
