// The control: the conformance service on a bare connect-node adapter and Node's own servers, with
// nothing of the mesh runtime. connect-node passes the official server suites upstream, so a case
// this target fails is the runner's fault, and one only the runtime fails is the runtime's.
import * as http from "node:http";
import * as http2 from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ConformanceService } from "@shop/api/connectrpc/conformance/v1/service_pb";
import { conformanceRegistry, conformanceService } from "./conformance-service.ts";
import type { StartTarget } from "./target.ts";
import { createTlsMaterial } from "./tls-material.ts";

// connect-es's own default for readMaxBytes: no limit short of what a length prefix can say.
const connectDefaultReadMaxBytes = 0xffffffff;
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Starts the connect-node control: HTTP/1.1 and h2c on one cleartext port and, when asked, TLS with
 * ALPN h2 and http/1.1 on a second port, verifying client certificates when given their authority.
 */
export const startControlServer: StartTarget = async (options) => {
  const handler = connectNodeAdapter({
    routes(router) {
      router.service(ConformanceService, conformanceService);
    },
    readMaxBytes: options.messageReceiveLimit,
    jsonOptions: { registry: conformanceRegistry },
  });
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  const cleartext = listenSniffing(h1, h2);
  const material = options.tls ? await createTlsMaterial() : undefined;
  const secure = material
    ? http2.createSecureServer(
        {
          allowHTTP1: true,
          cert: material.server.certPem,
          key: material.server.keyPem,
          ...(options.clientCaCertPem
            ? { ca: options.clientCaCertPem, requestCert: true, rejectUnauthorized: true }
            : {}),
        },
        handler,
      )
    : undefined;
  const servers: NetServer[] = [cleartext, ...(secure ? [secure] : [])];
  const sockets = new Set<Socket>();
  for (const server of servers) {
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
  }
  const ports = await Promise.all(servers.map(listen));
  const [cleartextPort, tlsPort] = ports;
  return {
    name: "connect-node control",
    cleartextUrl: `http://127.0.0.1:${cleartextPort}`,
    tlsUrl: tlsPort === undefined ? undefined : `https://127.0.0.1:${tlsPort}`,
    caCertPem: material?.caCertPem,
    httpVersions: { cleartext: [1, 2], tls: material ? [1, 2] : [] },
    maxReceiveBytes: options.messageReceiveLimit ?? connectDefaultReadMaxBytes,
    verifiesClientCerts: secure !== undefined && options.clientCaCertPem !== undefined,
    async close() {
      // The runner is done with the target: calls still open are cut rather than waited for.
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
};

// Node serves HTTP/1.1 and h2c on separate servers (allowHTTP1 works with TLS only), so one port
// serving both reads the first bytes of a connection to tell the HTTP/2 preface from HTTP/1.1.
function listenSniffing(h1: http.Server, h2: http2.Http2Server): NetServer {
  return createNetServer((socket) => {
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const length = Math.min(head.length, http2Preface.length);
      const prefaceSoFar = head.subarray(0, length).equals(http2Preface.subarray(0, length));
      if (prefaceSoFar && head.length < http2Preface.length) return;
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      if (prefaceSoFar) {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });
}

function listen(server: NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    });
  });
}
