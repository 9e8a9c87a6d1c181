// What a service says it serves, asked over gRPC server reflection (grpc.reflection.v1) by the
// dashboard's server: its services' names and the FileDescriptorProtos that describe them, imports
// included. Only the dashboard's server runs this: a browser cannot hold the bidi stream.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  ServerReflection,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "@shop/api/grpc/reflection/v1/reflection_pb";

/** What reflection told of one service URL. */
export interface Described {
  /** Fully qualified names of the services, reflection itself left out. */
  services: string[];
  /** Serialized FileDescriptorProtos, each file once, imports included. */
  files: Uint8Array[];
}

type RequestInit = Omit<Partial<ServerReflectionRequest>, "$typeName">;

/**
 * Asks the service at `url` what it serves: one reflection stream lists the services, a second asks
 * for the file of each (the answer carries its imports). `authorization` is passed on for services
 * that do not leave reflection open.
 */
export async function describeService(
  url: string,
  options: { authorization?: string; timeoutMs: number },
): Promise<Described> {
  const client = createClient(
    ServerReflection,
    createGrpcTransport({ baseUrl: url, useBinaryFormat: true }),
  );
  const headers = options.authorization ? { authorization: options.authorization } : undefined;
  const ask = async (requests: RequestInit[]): Promise<ServerReflectionResponse[]> => {
    const answers: ServerReflectionResponse[] = [];
    for await (const answer of client.serverReflectionInfo(
      (async function* () {
        yield* requests;
      })(),
      { headers, timeoutMs: options.timeoutMs },
    )) {
      if (answer.messageResponse.case === "errorResponse") {
        const { errorCode, errorMessage } = answer.messageResponse.value;
        throw new Error(`reflection answered error ${errorCode}: ${errorMessage}`);
      }
      answers.push(answer);
    }
    return answers;
  };

  const [listed] = await ask([{ messageRequest: { case: "listServices", value: "" } }]);
  const services =
    listed?.messageResponse.case === "listServicesResponse"
      ? listed.messageResponse.value.service
          .map((service) => service.name)
          .filter((name) => !name.startsWith("grpc.reflection."))
      : [];
  const answers = await ask(
    services.map((name) => ({ messageRequest: { case: "fileContainingSymbol", value: name } })),
  );
  const files = new Map<string, Uint8Array>();
  for (const answer of answers) {
    if (answer.messageResponse.case !== "fileDescriptorResponse") continue;
    for (const bytes of answer.messageResponse.value.fileDescriptorProto) {
      files.set(Buffer.from(bytes).toString("base64"), bytes);
    }
  }
  return { services, files: [...files.values()] };
}
