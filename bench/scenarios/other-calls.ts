// The storm's "other calls" as a process of their own: GetUser for each of the given ids in turn,
// 20 ms apart, until told to stop. In the driver's process they would share an event loop with
// the watchers' client, which decodes every snapshot message, and a reply would wait there for that
// work instead of for the server: what they measured was the driver, not the service.
//
//   node bench/scenarios/other-calls.ts <url> <id,id,...>
// Asked { type: "take" } over IPC, it answers { type: "taken", latencies, failures } (the calls
// since the last take); { type: "stop" } ends it.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";

/** What the driver asks of this process. */
export type OtherCallsQuestion = { type: "take" } | { type: "stop" };
/** What this process answers. */
export interface OtherCallsTaken {
  type: "taken";
  latencies: number[];
  failures: string[];
}

const [url, idList] = process.argv.slice(2);
if (url === undefined || idList === undefined || process.send === undefined) {
  throw new Error("usage: node other-calls.ts <url> <id,id,...>, started with an IPC channel");
}
const ids = idList.split(",");
const client = createClient(UserService, createGrpcTransport({ baseUrl: url }));
const latencies: number[] = [];
const failures: string[] = [];
let running = true;

process.on("message", (question: OtherCallsQuestion) => {
  if (question.type === "take") {
    const taken: OtherCallsTaken = {
      type: "taken",
      latencies: latencies.splice(0),
      failures: failures.splice(0),
    };
    process.send?.(taken);
  } else {
    running = false;
  }
});

for (let i = 0; running; i++) {
  const started = performance.now();
  try {
    await client.getUser({ id: ids[i % ids.length] ?? "" }, { timeoutMs: 10_000 });
    latencies.push(performance.now() - started);
  } catch (error) {
    failures.push(String(error));
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
process.disconnect();
