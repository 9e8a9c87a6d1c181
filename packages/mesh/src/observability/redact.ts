import {
  create,
  createRegistry,
  type DescFile,
  type DescMessage,
  isMessage,
  type JsonObject,
  type JsonValue,
  type Message,
  type MessageInitShape,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";

/** What a redacted field shows instead of its value. */
export const redacted = "[redacted]";

/**
 * `message` as JSON with every field the contract marks personal (`debug_redact = true`) replaced
 * by "[redacted]", however deep: in nested messages, lists and maps of them, and in `Any`s whose
 * type `registry` knows (an `Any` of an unknown type keeps only its type URL). protobuf-es writes
 * JSON without redacting, so this walks the JSON beside the message's descriptor. `message` may
 * also be the plain object a handler answered with (a handler may answer with a message's init
 * shape, as the watches do), which is made a message first.
 */
export function toRedactedJson(
  schema: DescMessage,
  message: Message | MessageInitShape<DescMessage>,
  registry: Registry,
): JsonValue {
  const real = isMessage(message, schema) ? message : create(schema, message);
  return redactValue(schema, toJson(schema, real, { registry }), registry);
}

/** A registry of the types of `files` and of every file they import, for the `Any`s in them. */
export function registryOf(files: readonly DescFile[]): Registry {
  const all = new Set<DescFile>();
  const add = (file: DescFile) => {
    if (all.has(file)) return;
    all.add(file);
    for (const dependency of file.dependencies) add(dependency);
  };
  for (const file of files) add(file);
  return createRegistry(...all);
}

/**
 * Redacts `json` (protobuf-es's JSON of a message of type `desc`) in place: it was made for this
 * call alone, and copying every object of it cost a tapped server garbage for each call.
 */
function redactValue(desc: DescMessage, json: JsonValue, registry: Registry): JsonValue {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return json;
  if (desc.typeName === "google.protobuf.Any") return redactAny(json, registry);
  for (const field of desc.fields) {
    const key = field.jsonName;
    const value = json[key];
    if (value === undefined) continue;
    if (field.proto.options?.debugRedact) {
      json[key] = redacted;
      continue;
    }
    if (field.fieldKind === "message") {
      json[key] = redactValue(field.message, value, registry);
    } else if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      for (let index = 0; index < value.length; index++) {
        value[index] = redactValue(field.message, value[index] as JsonValue, registry);
      }
    } else if (field.fieldKind === "map" && field.mapKind === "message" && isObject(value)) {
      for (const entry in value) {
        value[entry] = redactValue(field.message, value[entry] as JsonValue, registry);
      }
    }
  }
  return json;
}

/** An `Any` in JSON: "@type", then the message's fields (or "value", for a well-known type). */
function redactAny(json: JsonObject, registry: Registry): JsonValue {
  const typeUrl = json["@type"];
  if (typeof typeUrl !== "string") return {};
  const desc = registry.getMessage(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
  if (desc === undefined) return { "@type": typeUrl, value: redacted };
  // Well-known types with a JSON of their own carry it as "value"; they hold no marked field.
  if (desc.typeName.startsWith("google.protobuf.")) return json;
  const { "@type": _, ...fields } = json;
  return { "@type": typeUrl, ...(redactValue(desc, fields, registry) as JsonObject) };
}

function isObject(value: JsonValue): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
