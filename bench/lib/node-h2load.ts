// A fallback load generator for h2c, used only when h2load (Debian's nghttp2-client) is missing:
// `clients` HTTP/2 connections with `streams` requests in flight on each, all sending the same body
// for a warm-up and then for the measured time. It prints one JSON line: completed requests,
// errors and the latency of each request. Run by bench/lib/load.ts in a child process.
import * as http2 from "node:http2";

interface Options {
  url: string;
  path: string;
  body: string;
  headers: Record<string, string>;
  clients: number;
  streams: number;
  seconds: number;
  warmupSeconds: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options;
const body = Buffer.from(options.body, "base64");
const latencies: number[] = [];
let errors = 0;
let measuring = false;
let stopping = false;

function request(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    const stream = session.request({
      ":method": "POST",
      ":path": options.path,
      ...options.headers,
    });
    let status = 0;
    let grpcStatus: string | undefined;
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      if (headers["grpc-status"] !== undefined) grpcStatus = String(headers["grpc-status"]);
    });
    stream.on("trailers", (trailers) => {
      grpcStatus = String(trailers["grpc-status"]);
    });
    stream.on("data", () => {});
    stream.on("close", () => {
      const failed = status !== 200 || (grpcStatus !== undefined && grpcStatus !== "0");
      if (measuring) {
        if (failed) errors++;
        else latencies.push(performance.now() - started);
      }
      resolve();
    });
    stream.on("error", () => {});
    stream.end(body);
  });
}

async function worker(session: http2.ClientHttp2Session): Promise<void> {
  while (!stopping) await request(session);
}

const sessions = Array.from({ length: options.clients }, () => http2.connect(options.url));
const workers = sessions.flatMap((session) =>
  Array.from({ length: options.streams }, () => worker(session)),
);
await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000));
measuring = true;
const started = performance.now();
await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
measuring = false;
const seconds = (performance.now() - started) / 1000;
stopping = true;
await Promise.all(workers);
for (const session of sessions) session.close();
process.stdout.write(`${JSON.stringify({ seconds, errors, latencies })}\n`);
