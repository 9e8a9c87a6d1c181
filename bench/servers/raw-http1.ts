// The HTTP/1.1 limit for Connect JSON (raw-http1-server.ts) in a process of its own, which serves
// nothing else.

import { reportFailure, reportReady } from "./ipc.ts";
import { createRawHttp1Server } from "./raw-http1-server.ts";

const server = createRawHttp1Server();
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  const port = address && typeof address === "object" ? address.port : 0;
  reportReady(port, async () => {
    server.close();
    server.closeAllConnections();
  });
});
server.on("error", reportFailure);
