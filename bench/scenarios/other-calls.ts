// The storm's "other calls" as a process of their own (the bench's snapshot-storm scenario and
// test/snapshot-storm.test.ts): GetUser over gRPC for each of the given ids in turn, 5 ms apart,
// until told to stop. In the driver's process they would share an event loop
// with the watchers' client, which decodes every snapshot message, and a reply would wait there for
// that work instead of for the server: what they measured was the driver, not the service.
//
// The calls are made on node:http2 itself (bench/lib/grpc-unary.ts), each request's bytes made
// once: a probe should add as little of its own as it can. With connect-es's client here, each
// call's async iterables lived long enough to be promoted, and the probe's own scavenges (15-50 ms
// each, seen with --trace-gc, one or two a second) were the slowest calls of the quiet window and
// of the storm alike.
//
//   node bench/scenarios/other-calls.ts <url> <id,id,...>
// Asked { type: "take" } over IPC, it answers { type: "taken", latencies, failures } (the calls
// since the last take); { type: "stop" } ends it.
import * as http2 from "node:http2";
import { grpcUnary } from "../lib/grpc-unary.ts";
import { getUserRequestBytes, grpcFrame, userServicePath } from "../lib/requests.ts";

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
const path = userServicePath("GetUser");
const requests = idList.split(",").map((id) => grpcFrame(getUserRequestBytes(id)));
/** A call that has not ended after this long fails (the server is told too, by grpc-timeout). */
const deadlineMs = 10_000;
/** The pause after each call. */
const gapMs = 5;
const session = http2.connect(url);
session.on("error", () => {});
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
  const failure = await grpcUnary(
    session,
    path,
    requests[i % requests.length] as Buffer,
    deadlineMs,
  );
  if (failure === undefined) latencies.push(performance.now() - started);
  else failures.push(failure);
  await new Promise((resolve) => setTimeout(resolve, gapMs));
}
session.close();
process.disconnect();
