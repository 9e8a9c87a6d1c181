import {
  createRegistry,
  type DescFile,
  type DescService,
  fromBinary,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import * as v1 from "@shop/api/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@shop/api/grpc/reflection/v1alpha/reflection_pb";

type ReflectionRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
/** A response in the shape v1 and v1alpha share, so one function answers both. */
interface ReflectionResponse {
  validHost: string;
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | {
        case: "allExtensionNumbersResponse";
        value: { baseTypeName: string; extensionNumber: number[] };
      }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };
}

/**
 * Adds gRPC server reflection, v1 and v1alpha, to `router`, describing `services` with the files in
 * `files` and their imports. Written here because connect-es ships no reflection service; the protocol is small:
 * each request names a file, a symbol or an extension and is answered with serialized
 * FileDescriptorProtos, dependencies included.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const files = new Map<string, DescFile>();
  const collect = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const dependency of file.dependencies) collect(dependency);
  };
  for (const service of services) collect(service.file);
  collect(v1.file_grpc_reflection_v1_reflection);
  collect(v1alpha.file_grpc_reflection_v1alpha_reflection);
  const registry = createRegistry(...files.values());
  const serviceNames = [
    ...services.map((service) => service.typeName),
    v1.ServerReflection.typeName,
    v1alpha.ServerReflection.typeName,
  ];
  const answer = (req: ReflectionRequest): ReflectionResponse => {
    const found = (files: DescFile[]): ReflectionResponse => ({
      validHost: req.host,
      messageResponse: {
        case: "fileDescriptorResponse",
        value: { fileDescriptorProto: withDependencies(files) },
      },
    });
    const notFound = (what: string): ReflectionResponse => ({
      validHost: req.host,
      messageResponse: {
        case: "errorResponse",
        value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
      },
    });
    const message = req.messageRequest;
    switch (message.case) {
      case "listServices":
        return {
          validHost: req.host,
          messageResponse: {
            case: "listServicesResponse",
            value: { service: serviceNames.map((name) => ({ name })) },
          },
        };
      case "fileByFilename": {
        const file = files.get(message.value);
        return file ? found([file]) : notFound(`file ${message.value}`);
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(registry, message.value);
        return file ? found([file]) : notFound(`symbol ${message.value}`);
      }
      case "fileContainingExtension": {
        const extendee = registry.getMessage(message.value.containingType);
        const extension =
          extendee && registry.getExtensionFor(extendee, message.value.extensionNumber);
        return extension
          ? found([extension.file])
          : notFound(
              `extension ${message.value.extensionNumber} of ${message.value.containingType}`,
            );
      }
      case "allExtensionNumbersOfType": {
        const extendee = registry.getMessage(message.value);
        if (!extendee) return notFound(`type ${message.value}`);
        const numbers: number[] = [];
        for (const desc of registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === extendee.typeName) {
            numbers.push(desc.number);
          }
        }
        return {
          validHost: req.host,
          messageResponse: {
            case: "allExtensionNumbersResponse",
            value: { baseTypeName: extendee.typeName, extensionNumber: numbers },
          },
        };
      }
      default:
        return {
          validHost: req.host,
          messageResponse: {
            case: "errorResponse",
            value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" },
          },
        };
    }
  };
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      await withComments();
      for await (const req of requests) yield { ...answer(req), originalRequest: req };
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      await withComments();
      for await (const req of requests) yield { ...answer(req), originalRequest: req };
    },
  });
}

function fileOfSymbol(registry: Registry, symbol: string): DescFile | undefined {
  const desc = registry.get(symbol);
  if (desc) return desc.file;
  // A method (package.Service.Method) or a field (package.Message.field): look up its parent.
  const parent = registry.get(symbol.slice(0, Math.max(0, symbol.lastIndexOf("."))));
  if (parent?.kind === "service") {
    const name = symbol.slice(symbol.lastIndexOf(".") + 1);
    return parent.methods.some((method) => method.name === name) ? parent.file : undefined;
  }
  if (parent?.kind === "message") {
    const name = symbol.slice(symbol.lastIndexOf(".") + 1);
    return parent.fields.some((field) => field.name === name) ? parent.file : undefined;
  }
  return undefined;
}

/**
 * The contracts' files as `buf build` wrote them, with their comments (source info), by name: the
 * generated code embeds its files without them. Loaded with the first reflection request (it is
 * large, and most processes are never asked).
 */
let commented: Map<string, Uint8Array> | undefined;
let loadingComments: Promise<void> | undefined;
function withComments(): Promise<void> {
  loadingComments ??= import("@shop/api/descriptors").then(
    ({ fileDescriptorSetBase64 }) => {
      const set = fromBinary(
        FileDescriptorSetSchema,
        Buffer.from(fileDescriptorSetBase64, "base64"),
      );
      commented = new Map(
        set.file.map((file) => [file.name, toBinary(FileDescriptorProtoSchema, file)]),
      );
    },
    () => {
      // Without the generated set, files are served as the generated code embeds them.
    },
  );
  return loadingComments;
}

/** Serializes `files` and everything they import, each file once, dependencies first. */
function withDependencies(files: DescFile[]): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const visit = (file: DescFile) => {
    if (seen.has(file.proto.name)) return;
    seen.add(file.proto.name);
    for (const dependency of file.dependencies) visit(dependency);
    out.push(commented?.get(file.proto.name) ?? toBinary(FileDescriptorProtoSchema, file.proto));
  };
  for (const file of files) visit(file);
  return out;
}
