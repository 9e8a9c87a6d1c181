// A default @connectrpc/connect-node server: the same UserService handlers over the in-memory
// fixture user, passed to connectNodeAdapter and served by node:http2 (h2c) — no interceptors, no
// protocol sniffing, no limits, health, metrics or tracing. The difference between this and our
// server is the cost of the mesh runtime; between this and the raw server, the library's.
import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { userRoutes } from "../../services/users/src/transport/routes.ts";
import { createMemoryUserRepository } from "../lib/fixture.ts";
import { reportFailure, reportReady } from "./ipc.ts";

const server = http2.createServer(
  connectNodeAdapter({ routes: userRoutes(createMemoryUserRepository()) }),
);
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  const port = address && typeof address === "object" ? address.port : 0;
  reportReady(port, async () => {
    server.close();
  });
});
server.on("error", reportFailure);
