// OTLP/HTTP trace exports as the dashboard's receiver reads them (POST /v1/traces): protobuf
// (`application/x-protobuf`, what the services' exporter sends by default) or JSON
// (`application/json`), into spans the trace store keeps.
import { fromBinary, fromJson, type JsonValue } from "@bufbuild/protobuf";
import {
  type AnyValue,
  type ExportTraceServiceRequest,
  ExportTraceServiceRequestSchema,
  type KeyValue,
  SpanKind,
  StatusCode,
} from "@shop/api/shop/telemetry/v1/otlp_trace_pb";

/** An attribute's value, as the pages show it. */
export type AttributeValue = string | number | boolean | AttributeValue[] | null;

/** One span, as the store keeps it and the pages show it. */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  kind: "internal" | "server" | "client" | "producer" | "consumer" | "unspecified";
  /** The resource's `service.name`. */
  service: string;
  /** Milliseconds since the Unix epoch, with the fraction the nanoseconds give. */
  startMs: number;
  durationMs: number;
  attributes: Record<string, AttributeValue>;
  events: { timeMs: number; name: string; attributes: Record<string, AttributeValue> }[];
  error: boolean;
  statusMessage: string;
}

/** An export the receiver cannot read: the exporter gets 400 with this message. */
export class MalformedExportError extends Error {}

/** The spans of an export, by its content type. */
export function decodeExport(body: Uint8Array, contentType: string): SpanRecord[] {
  let request: ExportTraceServiceRequest;
  try {
    if (contentType.startsWith("application/json")) {
      const json = JSON.parse(Buffer.from(body).toString("utf8")) as JsonValue;
      request = fromJson(ExportTraceServiceRequestSchema, hexIdsToBase64(json), {
        ignoreUnknownFields: true,
      });
    } else if (contentType.startsWith("application/x-protobuf")) {
      request = fromBinary(ExportTraceServiceRequestSchema, body);
    } else {
      throw new MalformedExportError(
        `send application/x-protobuf or application/json, not ${contentType || "no content type"}`,
      );
    }
  } catch (error) {
    if (error instanceof MalformedExportError) throw error;
    throw new MalformedExportError(
      `not an OTLP trace export: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const spans: SpanRecord[] = [];
  for (const resourceSpans of request.resourceSpans) {
    const resource = attributesOf(resourceSpans.resource?.attributes ?? []);
    const service = typeof resource["service.name"] === "string" ? resource["service.name"] : "";
    for (const scope of resourceSpans.scopeSpans) {
      for (const span of scope.spans) {
        const startMs = nanosToMs(span.startTimeUnixNano);
        spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: span.name,
          kind: kindNames[span.kind] ?? "unspecified",
          service,
          startMs,
          durationMs: Math.max(0, nanosToMs(span.endTimeUnixNano) - startMs),
          attributes: attributesOf(span.attributes),
          events: span.events.map((event) => ({
            timeMs: nanosToMs(event.timeUnixNano),
            name: event.name,
            attributes: attributesOf(event.attributes),
          })),
          error: span.status?.code === StatusCode.ERROR,
          statusMessage: span.status?.message ?? "",
        });
      }
    }
  }
  return spans;
}

const kindNames: Record<number, SpanRecord["kind"]> = {
  [SpanKind.INTERNAL]: "internal",
  [SpanKind.SERVER]: "server",
  [SpanKind.CLIENT]: "client",
  [SpanKind.PRODUCER]: "producer",
  [SpanKind.CONSUMER]: "consumer",
};

/**
 * OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping has base64: the ids
 * are turned into base64 so that the protobuf schema reads the rest as it is.
 */
function hexIdsToBase64(json: JsonValue): JsonValue {
  if (Array.isArray(json)) return json.map(hexIdsToBase64);
  if (json === null || typeof json !== "object") return json;
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(json)) {
    const id = key === "traceId" || key === "spanId" || key === "parentSpanId";
    out[key] =
      id && typeof value === "string" && /^([0-9a-fA-F]{2})*$/.test(value)
        ? Buffer.from(value, "hex").toString("base64")
        : hexIdsToBase64(value);
  }
  return out;
}

function attributesOf(list: readonly KeyValue[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { key, value } of list) out[key] = attributeValue(value);
  return out;
}

function attributeValue(value: AnyValue | undefined): AttributeValue {
  const kind = value?.value;
  switch (kind?.case) {
    case "stringValue":
    case "boolValue":
    case "doubleValue":
      return kind.value;
    case "intValue":
      return Number(kind.value);
    case "arrayValue":
      return kind.value.values.map(attributeValue);
    case "kvlistValue":
      return JSON.stringify(attributesOf(kind.value.values));
    case "bytesValue":
      return hex(kind.value);
    default:
      return null;
  }
}

function nanosToMs(nanos: bigint): number {
  return Number(nanos / 1000n) / 1000;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}
