// The server under test: the conformance service served by serve() of the mesh runtime, as
// startService serves a shop service (the same interceptor chain, the gRPC path, the request
// guard, the limits, HTTP/1.1, h2c and TLS sniffed on one port), so that what the suites find is
// what a shop service's clients would meet.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConformanceService } from "@shop/api/connectrpc/conformance/v1/service_pb";
import { defaultLimits, serve } from "@shop/mesh";
import { pino } from "pino";
import { conformanceRegistry, conformanceService } from "./conformance-service.ts";
import type { StartTarget } from "./target.ts";
import { createTlsMaterial } from "./tls-material.ts";

/**
 * Starts the conformance service on the mesh runtime: one port for cleartext and TLS, messages up
 * to messageReceiveLimit, client certificates verified when their authority is given.
 */
export const startServerUnderTest: StartTarget = async (options) => {
  // A shop service is given its certificate and key as files (TLS_CERT_FILE, TLS_KEY_FILE), so the
  // material made in memory is handed over the same way.
  const material = options.tls ? await createTlsMaterial() : undefined;
  const dir = material ? await mkdtemp(path.join(tmpdir(), "conformance-tls-")) : undefined;
  const file = async (name: string, pem: string) => {
    const filePath = path.join(dir ?? "", name);
    await writeFile(filePath, pem, { mode: 0o600 });
    return filePath;
  };
  const tls = material && {
    certFile: await file("cert.pem", material.server.certPem),
    keyFile: await file("key.pem", material.server.keyPem),
    clientCaFile: options.clientCaCertPem
      ? await file("client-ca.pem", options.clientCaCertPem)
      : undefined,
  };
  const limits = {
    ...defaultLimits,
    maxMessageBytes: options.messageReceiveLimit ?? defaultLimits.maxMessageBytes,
  };
  const server = await serve({
    name: "conformance",
    services: [ConformanceService],
    routes(router) {
      router.service(ConformanceService, conformanceService);
    },
    port: 0,
    host: "127.0.0.1",
    tls,
    limits,
    corsOrigins: [],
    // The suites provoke failures by the thousand; their logs would bury the runner's report.
    logger: pino({ level: "silent" }),
    readiness: async () => ({}),
    jsonOptions: { registry: conformanceRegistry },
    // Authentication stays off. serve() authorizes each call by the `(shop.mesh.v1.access)` option
    // of its method and refuses every method without one, and the vendored conformance protos,
    // which must stay as upstream wrote them, declare none: with auth on, every call would end
    // `permission_denied` whatever token the runner sent. Listing the service as open instead
    // would skip the token check altogether, which is authentication off under another name.
    auth: undefined,
  });
  return {
    name: "mesh runtime",
    cleartextUrl: server.url,
    // TLS is told apart from cleartext by its first byte, on the same port.
    tlsUrl: material ? `https://127.0.0.1:${server.port}` : undefined,
    caCertPem: material?.caCertPem,
    httpVersions: { cleartext: [1, 2], tls: material ? [1, 2] : [] },
    maxReceiveBytes: limits.maxMessageBytes,
    verifiesClientCerts: tls?.clientCaFile !== undefined,
    async close() {
      await server.close(500);
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
};
