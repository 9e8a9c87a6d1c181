// The dashboard's OTLP receiver reads what OpenTelemetry's own exporters send: spans recorded by the
// SDK's tracer, serialized by the exporters' serializers (protobuf and JSON), come out the same;
// the store keeps each span once, groups them by trace and stays within its bounds.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { decodeExport, MalformedExportError, type SpanRecord } from "../src/lib/otlp.ts";
import { createTraceStore } from "../src/lib/trace-store.ts";

/** A server span with a client child, as a service records a call it makes on behalf of another. */
async function recordSpans() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer("test");
  const server = tracer.startSpan("shop.order.v1.OrderService/CreateOrder", {
    kind: SpanKind.SERVER,
    attributes: { "rpc.deadline.remaining_ms": 9_990 },
  });
  const client = tracer.startSpan(
    "shop.user.v1.UserService/GetUser",
    {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.method": "GetUser", "rpc.retries": 2, "rpc.idempotent": true },
    },
    trace.setSpan(ROOT_CONTEXT, server),
  );
  client.addEvent("retry", { attempt: 1 });
  client.setStatus({ code: SpanStatusCode.ERROR, message: "users is unavailable" });
  client.end();
  server.end();
  await provider.forceFlush();
  return exporter.getFinishedSpans();
}

function check(spans: SpanRecord[], recorded: Awaited<ReturnType<typeof recordSpans>>) {
  assert.equal(spans.length, 2);
  const [client, server] = spans;
  assert.ok(client && server);
  const [recordedClient, recordedServer] = recorded;
  assert.equal(server.traceId, recordedServer?.spanContext().traceId);
  assert.equal(server.spanId, recordedServer?.spanContext().spanId);
  assert.equal(server.parentSpanId, "");
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(client.spanId, recordedClient?.spanContext().spanId);
  assert.equal(server.kind, "server");
  assert.equal(client.kind, "client");
  assert.equal(server.attributes["rpc.deadline.remaining_ms"], 9_990);
  assert.deepEqual(client.attributes, {
    "rpc.method": "GetUser",
    "rpc.retries": 2,
    "rpc.idempotent": true,
  });
  assert.equal(client.events[0]?.name, "retry");
  assert.deepEqual(client.events[0]?.attributes, { attempt: 1 });
  assert.equal(client.error, true);
  assert.equal(client.statusMessage, "users is unavailable");
  assert.equal(server.error, false);
  const start = recordedServer?.startTime;
  assert.ok(start);
  assert.ok(Math.abs(server.startMs - (start[0] * 1_000 + start[1] / 1e6)) < 0.01);
  assert.ok(server.durationMs >= client.durationMs);
}

test("an export the SDK's protobuf serializer made is read span for span", async () => {
  const recorded = await recordSpans();
  const body = ProtobufTraceSerializer.serializeRequest(recorded);
  assert.ok(body);
  check(decodeExport(body, "application/x-protobuf"), recorded);
});

test("an export the SDK's JSON serializer made (hex ids) is read alike", async () => {
  const recorded = await recordSpans();
  const body = JsonTraceSerializer.serializeRequest(recorded);
  assert.ok(body);
  check(decodeExport(body, "application/json"), recorded);
});

test("what is not an export is refused with a reason", () => {
  assert.throws(
    () => decodeExport(new TextEncoder().encode("{"), "application/json"),
    MalformedExportError,
  );
  assert.throws(() => decodeExport(new Uint8Array([0xff, 0xff]), "application/x-protobuf"), {
    name: "Error",
    message: /not an OTLP trace export/,
  });
  assert.throws(() => decodeExport(new Uint8Array(), "text/plain"), /application\/x-protobuf/);
});

test("the store keeps a span once, groups spans by trace, and forgets the oldest past its bounds", () => {
  const store = createTraceStore({ maxTraces: 3, maxSpans: 5 });
  const span = (traceId: string, spanId: string, startMs: number): SpanRecord => ({
    traceId,
    spanId,
    parentSpanId: spanId === "a" ? "" : "a",
    name: `op ${spanId}`,
    kind: "server",
    service: spanId === "a" ? "orders" : "users",
    startMs,
    durationMs: 10,
    attributes: {},
    events: [],
    error: false,
    statusMessage: "",
  });
  store.add([span("t1", "a", 100), span("t1", "b", 105)]);
  store.add([span("t1", "b", 105)]);
  assert.equal(store.get("t1")?.length, 2, "a span sent again is kept once");
  assert.deepEqual(store.list()[0], {
    traceId: "t1",
    root: "op a",
    services: ["orders", "users"],
    startMs: 100,
    durationMs: 15,
    spans: 2,
    error: false,
  });
  store.add([span("t2", "a", 200), span("t3", "a", 300), span("t4", "a", 400)]);
  assert.equal(store.get("t1"), undefined, "the least recently changed trace goes first");
  assert.deepEqual(
    store.list().map((trace) => trace.traceId),
    ["t4", "t3", "t2"],
  );
  store.add([span("t2", "b", 201), span("t2", "c", 202), span("t3", "b", 301)]);
  const kept = store.list().reduce((sum, trace) => sum + trace.spans, 0);
  assert.ok(kept <= 5, `${kept} spans kept`);
});
