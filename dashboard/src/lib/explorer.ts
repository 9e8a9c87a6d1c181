// The API explorer's model, without React: the catalog of services built from the descriptors that
// reflection gave (GET /api/explorer), request templates, reading a request typed by a person
// (checked against the contract's rules before it is sent), and commands that repeat a call.
import {
  create,
  createFileRegistry,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  fromJson,
  type JsonValue,
  type Message,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createValidator } from "@bufbuild/protovalidate";
import type { ConnectError } from "@connectrpc/connect";

/** One service URL as GET /api/explorer describes it. */
export type ExplorerTarget = { name: string; url: string } & (
  | { services: string[]; files: string[] }
  | { error: string }
);

/** A service URL with its services, ready to call. */
export interface CatalogTarget {
  name: string;
  url: string;
  registry: Registry | undefined;
  services: DescService[];
  /** Why reflection gave nothing, when it did not answer. */
  error: string | undefined;
}

/** Builds each target's registry from its FileDescriptorProtos (base64) and finds its services. */
export function buildCatalog(targets: readonly ExplorerTarget[]): CatalogTarget[] {
  return targets.map((target) => {
    if ("error" in target) {
      return { ...target, registry: undefined, services: [], error: target.error };
    }
    try {
      const registry = registryOf(target.files.map(base64Bytes));
      const services = target.services
        .map((name) => registry.getService(name))
        .filter((service) => service !== undefined);
      return { name: target.name, url: target.url, registry, services, error: undefined };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { ...target, registry: undefined, services: [], error: reason };
    }
  });
}

/** A registry of the files in `files` (serialized FileDescriptorProtos, imports included). */
export function registryOf(files: readonly Uint8Array[]): Registry {
  return createFileRegistry(
    create(FileDescriptorSetSchema, {
      file: files.map((file) => fromBinary(FileDescriptorProtoSchema, file)),
    }),
  );
}

function base64Bytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A request to start from: every scalar, enum and list field of the input, at its zero value. */
export function requestTemplate(method: DescMethod, registry: Registry): string {
  const json = toJson(method.input, create(method.input), { alwaysEmitImplicit: true, registry });
  return JSON.stringify(json, null, 2);
}

/** A request read from the page: the message, or what is wrong with it, naming the field. */
export type ParsedRequest = { message: Message } | { problem: string };

const validators = new WeakMap<Registry, ReturnType<typeof createValidator>>();

/**
 * Reads `text` as the JSON of `method`'s input and, unless told not to, checks it against the
 * contract's rules (protovalidate, as the service will): a request that would be refused is not
 * sent.
 */
export function parseRequest(
  method: DescMethod,
  text: string,
  registry: Registry,
  options: { checkRules: boolean } = { checkRules: true },
): ParsedRequest {
  let json: JsonValue;
  try {
    json = JSON.parse(text === "" ? "{}" : text) as JsonValue;
  } catch (error) {
    return { problem: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  let message: Message;
  try {
    message = fromJson(method.input, json, { registry });
  } catch (error) {
    return { problem: error instanceof Error ? error.message : String(error) };
  }
  if (!options.checkRules) return { message };
  let validator = validators.get(registry);
  if (!validator) {
    validator = createValidator({ registry });
    validators.set(registry, validator);
  }
  const result = validator.validate(method.input, message);
  if (result.kind === "invalid") {
    const described = result.violations.map((violation) => {
      const field =
        violation.field
          .map((part) =>
            part.kind === "list_sub"
              ? `[${part.index}]`
              : part.kind === "map_sub"
                ? `[${String(part.key)}]`
                : part.name,
          )
          .join(".")
          .replaceAll(".[", "[") || "(message)";
      return `${field}: ${violation.message}`;
    });
    return { problem: described.join("; ") };
  }
  return { message };
}

/**
 * A message of `method` (its answer, or with "input" its request) as JSON, Any and well-known
 * types resolved through `registry`.
 */
export function messageJson(
  method: DescMethod,
  message: Message,
  registry: Registry,
  side: "input" | "output" = "output",
): JsonValue {
  return toJson(side === "input" ? method.input : method.output, message, { registry });
}

/** An error detail decoded by its type; `json` is null for a type the service did not describe. */
export interface DecodedDetail {
  type: string;
  json: JsonValue | null;
}

/** Decodes `detail` (what arrives from a service: its type name and bytes) with `registry`. */
export function decodeDetail(
  detail: ConnectError["details"][number],
  registry: Registry,
): DecodedDetail {
  const type = "type" in detail ? detail.type : detail.desc.typeName;
  const schema = registry.getMessage(type);
  if (!schema || !("type" in detail)) return { type, json: null };
  return { type, json: toJson(schema, fromBinary(schema, detail.value), { registry }) };
}

/** The command kinds the page copies. */
export type CommandKind = "buf curl" | "grpcurl" | "curl";

/**
 * A shell command that repeats the call, with the token from the README's `export TOKEN=...` step
 * (never the page's token). curl speaks Connect's unary protocol only.
 */
export function commandFor(
  kind: CommandKind,
  url: string,
  method: DescMethod,
  body: string,
): string | undefined {
  const path = `${method.parent.typeName}/${method.name}`;
  const data = shellQuote(JSON.stringify(JSON.parse(body === "" ? "{}" : body)));
  const auth = `-H "authorization: Bearer $TOKEN"`;
  if (kind === "buf curl") {
    return `npx buf curl ${auth} --protocol grpc --http2-prior-knowledge -d ${data} ${url}/${path}`;
  }
  if (kind === "grpcurl") {
    const { host, protocol } = new URL(url);
    return `grpcurl ${protocol === "http:" ? "-plaintext " : ""}${auth} -d ${data} ${host} ${path}`;
  }
  if (method.methodKind !== "unary") return undefined;
  return `curl -X POST ${url}/${path} -H 'content-type: application/json' ${auth} -d ${data}`;
}

/** `text` as one single-quoted shell word. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** What a link to the explorer carries: the service URL, the method and the body, never a token. */
export interface SharedCall {
  url: string;
  method: string;
  body: string;
}

/** The query of a link that reproduces `call`. */
export function linkQuery(call: SharedCall): string {
  return new URLSearchParams({ url: call.url, method: call.method, body: call.body }).toString();
}

/** The call a link's query names, if it names one. */
export function sharedCallOf(query: URLSearchParams): SharedCall | undefined {
  const url = query.get("url");
  const method = query.get("method");
  if (!url || !method) return undefined;
  return { url, method, body: query.get("body") ?? "" };
}

/**
 * The comment written above `field` in its .proto file, when the service's descriptors carry
 * their source info; undefined otherwise. (The path of a field in FileDescriptorProto's
 * source_code_info: 4 = message_type, 3 = nested_type, 2 = field, each followed by an index.)
 */
export function commentOf(field: DescField): string | undefined {
  const path: number[] = [];
  let message: DescMessage | undefined = field.parent;
  const fieldIndex = message.proto.field.indexOf(field.proto);
  path.unshift(2, fieldIndex);
  while (message) {
    const parent: DescMessage | undefined = message.parent;
    const index = parent
      ? parent.proto.nestedType.indexOf(message.proto)
      : message.file.proto.messageType.indexOf(message.proto);
    path.unshift(parent ? 3 : 4, index);
    message = parent;
  }
  const location = field.parent.file.proto.sourceCodeInfo?.location.find(
    (candidate) =>
      candidate.path.length === path.length &&
      candidate.path.every((part, at) => part === path[at]),
  );
  const text = location?.leadingComments.trim();
  return text ? text.replaceAll(/\s*\n\s*/g, " ") : undefined;
}
