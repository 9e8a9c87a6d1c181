// Loads the official test suites and expands every case into the permutations the official runner
// (connectrpc/conformance, internal/app/connectconformance/test_case_library.go and config.go)
// would run against a server, with the expected response filled in where a case names none.
// Names, order of name components and the filling rules follow that runner so that a failure here
// can be looked up there by name.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import {
  clone,
  create,
  createRegistry,
  type DescEnum,
  fromJson,
  type JsonValue,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import {
  anyPack,
  anyUnpack,
  file_google_protobuf_descriptor,
  file_google_protobuf_empty,
  file_google_protobuf_struct,
} from "@bufbuild/protobuf/wkt";
import {
  type ClientCompatRequest,
  ClientCompatRequestSchema,
  type ClientResponseResult,
  ClientResponseResultSchema,
  file_connectrpc_conformance_v1_client_compat,
} from "@shop/api/connectrpc/conformance/v1/client_compat_pb";
import {
  Codec,
  CodecSchema,
  Compression,
  CompressionSchema,
  file_connectrpc_conformance_v1_config,
  HTTPVersion,
  Protocol,
  ProtocolSchema,
  StreamType,
} from "@shop/api/connectrpc/conformance/v1/config_pb";
import {
  type ConformancePayload,
  ConformancePayload_ConnectGetInfoSchema,
  type ConformancePayload_RequestInfo,
  ConformancePayload_RequestInfoSchema,
  ConformancePayloadSchema,
  ErrorSchema,
  file_connectrpc_conformance_v1_service,
  HeaderSchema,
  type StreamResponseDefinition,
  type UnaryResponseDefinition,
} from "@shop/api/connectrpc/conformance/v1/service_pb";
import {
  file_connectrpc_conformance_v1_suite,
  type TestCase,
  type TestSuite,
  TestSuite_ConnectVersionMode,
  TestSuite_TestMode,
  TestSuiteSchema,
} from "@shop/api/connectrpc/conformance/v1/suite_pb";
import { parse as parseYaml } from "yaml";

/** The folder of the vendored suites (`conformance/suites/*.yaml`). */
export const suitesDir = path.resolve(import.meta.dirname, "../../suites");

/** Every message type a suite's `@type` may name (and the runner packs), so that Any resolves. */
export const conformanceRegistry: Registry = createRegistry(
  file_connectrpc_conformance_v1_suite,
  file_connectrpc_conformance_v1_client_compat,
  file_connectrpc_conformance_v1_config,
  file_connectrpc_conformance_v1_service,
  file_google_protobuf_descriptor,
  file_google_protobuf_empty,
  file_google_protobuf_struct,
);

/** The request size limit the official runner gives every server under test (200 KiB). */
export const serverReceiveLimit = 200 * 1024;
/** The response size limit the reference client sets (larger than the server's, see the Go runner). */
export const clientReceiveLimit = 1024 * 1024;

/** What the servers under test support, as a conformance `Features` config would say. */
export interface Features {
  versions: HTTPVersion[];
  protocols: Protocol[];
  codecs: Codec[];
  compressions: Compression[];
  streamTypes: StreamType[];
  h2c: boolean;
  tls: boolean;
  tlsClientCerts: boolean;
  connectGet: boolean;
  halfDuplexBidiOverHttp1: boolean;
  messageReceiveLimit: boolean;
}

/**
 * The features of both targets: connect-es serves every protocol, codec and stream type, gzip and
 * brotli, h2c and TLS with client certificates (the connect-node server's own conformance config in
 * connect-es says the same), but no bidi stream over HTTP/1.1.
 */
export const serverFeatures: Features = {
  versions: [HTTPVersion.HTTP_VERSION_1, HTTPVersion.HTTP_VERSION_2],
  protocols: [Protocol.CONNECT, Protocol.GRPC, Protocol.GRPC_WEB],
  codecs: [Codec.PROTO, Codec.JSON],
  compressions: [Compression.IDENTITY, Compression.GZIP, Compression.BR],
  streamTypes: [
    StreamType.UNARY,
    StreamType.CLIENT_STREAM,
    StreamType.SERVER_STREAM,
    StreamType.HALF_DUPLEX_BIDI_STREAM,
    StreamType.FULL_DUPLEX_BIDI_STREAM,
  ],
  h2c: true,
  tls: true,
  tlsClientCerts: true,
  connectGet: true,
  halfDuplexBidiOverHttp1: false,
  messageReceiveLimit: true,
};

/** A suite file read from disk; client-mode suites are kept unparsed, only counted. */
export interface LoadedSuite {
  file: string;
  name: string;
  mode: TestSuite_TestMode;
  /** Absent for client-mode suites (they may name types only a client test knows). */
  suite?: TestSuite;
  caseCount: number;
}

/** One test case of one suite in one configuration, ready to send and to judge. */
export interface Permutation {
  /** The suite's name (`Basic`). */
  suite: string;
  /** The full name, as the official runner prints it (`Basic/HTTPVersion:1/.../unary/success`). */
  name: string;
  /** The name as written in the YAML (`unary/success`). */
  simpleName: string;
  /** The request to send: protocol, codec, compression, HTTP version and stream type are set. */
  request: ClientCompatRequest;
  /** What the server must answer. */
  expected: ClientResponseResult;
  /** Codes accepted instead of the expected one. */
  otherAllowedErrorCodes: number[];
  useTls: boolean;
  useTlsClientCerts: boolean;
}

/** Reads every suite file of `dir`, validating each as the official runner does. */
export function loadSuites(dir: string = suitesDir): LoadedSuite[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const loaded: LoadedSuite[] = [];
  const names = new Map<string, string>();
  for (const file of files) {
    const raw = parseYaml(readFileSync(path.join(dir, file), "utf8")) as {
      name?: string;
      mode?: string;
      testCases?: unknown[];
    };
    const name = raw.name ?? "";
    if (name === "") throw new Error(`${file} defines a suite with no name`);
    const other = names.get(name);
    if (other !== undefined)
      throw new Error(`both ${file} and ${other} define a suite named ${name}`);
    names.set(name, file);
    const caseCount = raw.testCases?.length ?? 0;
    if (caseCount === 0) throw new Error(`${file} defines a suite ${name} that has no test cases`);
    if (raw.mode === "TEST_MODE_CLIENT") {
      loaded.push({ file, name, mode: TestSuite_TestMode.CLIENT, caseCount });
      continue;
    }
    const suite = fromJson(TestSuiteSchema, raw as JsonValue, { registry: conformanceRegistry });
    validateSuite(file, suite);
    for (const testCase of suite.testCases) expandRequestData(testCase);
    loaded.push({ file, name, mode: suite.mode, suite, caseCount });
  }
  return loaded;
}

function validateSuite(file: string, suite: TestSuite): void {
  for (const testCase of suite.testCases) {
    const request = testCase.request;
    if (request === undefined) throw new Error(`${file}: a test case has no request`);
    if (request.rawRequest !== undefined && suite.mode !== TestSuite_TestMode.SERVER) {
      throw new Error(`${file}: ${request.testName} has a raw request outside TEST_MODE_SERVER`);
    }
    if (
      testCase.expandRequests.length > 0 &&
      (suite.relevantCodecs.length !== 1 || suite.relevantCodecs[0] !== Codec.PROTO)
    ) {
      // The padding is computed on the binary size, so it means nothing for other codecs.
      throw new Error(`${file}: ${request.testName} expands requests but is not proto-only`);
    }
  }
}

/** Pads `requestData` of the messages an `expandRequests` directive names to the exact size asked. */
function expandRequestData(testCase: TestCase): void {
  const request = testCase.request;
  if (request === undefined || testCase.expandRequests.length === 0) return;
  if (testCase.expandRequests.length > request.requestMessages.length) {
    throw new Error(`${request.testName}: more expand directives than request messages`);
  }
  testCase.expandRequests.forEach((directive, i) => {
    if (directive.sizeRelativeToLimit === undefined) return;
    const target = serverReceiveLimit + directive.sizeRelativeToLimit;
    const packed = request.requestMessages[i];
    if (packed === undefined) return;
    const message = anyUnpack(packed, conformanceRegistry) as
      | ({ $typeName: string; requestData?: Uint8Array } & Record<string, unknown>)
      | undefined;
    if (message === undefined || !(message.requestData instanceof Uint8Array)) {
      throw new Error(`${request.testName}: request #${i + 1} has no requestData to pad`);
    }
    const desc = conformanceRegistry.getMessage(message.$typeName);
    if (desc === undefined) throw new Error(`unknown type ${message.$typeName}`);
    // Adding a byte can grow the length prefix by one, so converge in a few steps, as upstream does.
    for (let attempt = 0; ; attempt++) {
      const size = toBinary(desc, message).length;
      const delta = target - size;
      if (delta === 0) break;
      if (attempt >= 2) throw new Error(`${request.testName}: cannot pad to exactly ${target}`);
      const data: Uint8Array = message.requestData;
      const next = new Uint8Array(Math.max(0, data.length + delta));
      next.set(data.subarray(0, Math.min(data.length, next.length)));
      message.requestData = next;
    }
    request.requestMessages[i] = anyPack(desc, message);
  });
}

function enumName(schema: DescEnum, value: number): string {
  return schema.values.find((v) => v.number === value)?.name ?? String(value);
}

function allValues(schema: DescEnum): number[] {
  return schema.values.map((v) => v.number).filter((n) => n !== 0);
}

const defaultMethods: Record<number, string> = {
  [StreamType.UNARY]: "Unary",
  [StreamType.CLIENT_STREAM]: "ClientStream",
  [StreamType.SERVER_STREAM]: "ServerStream",
  [StreamType.HALF_DUPLEX_BIDI_STREAM]: "BidiStream",
  [StreamType.FULL_DUPLEX_BIDI_STREAM]: "BidiStream",
};

interface ConfigCase {
  version: HTTPVersion;
  protocol: Protocol;
  codec: Codec;
  compression: Compression;
  streamType: StreamType;
  tls: boolean;
}

/**
 * Whether the features yield this configuration (computeCasesFromFeatures upstream): the suite's
 * own needs (client certs, GET, a receive limit, a Connect version mode) must be among them too.
 */
function supported(features: Features, suite: TestSuite, c: ConfigCase): boolean {
  if (!features.versions.includes(c.version)) return false;
  if (!features.protocols.includes(c.protocol)) return false;
  if (!features.codecs.includes(c.codec) || c.codec === Codec.TEXT) return false;
  if (!features.compressions.includes(c.compression)) return false;
  if (!features.streamTypes.includes(c.streamType)) return false;
  if (c.tls && !features.tls) return false;
  if (!c.tls && (c.version === HTTPVersion.HTTP_VERSION_3 || (c.version === 2 && !features.h2c))) {
    return false;
  }
  if (c.protocol === Protocol.GRPC && c.version !== HTTPVersion.HTTP_VERSION_2) return false;
  if (c.version === HTTPVersion.HTTP_VERSION_1) {
    if (c.streamType === StreamType.FULL_DUPLEX_BIDI_STREAM) return false;
    if (c.streamType === StreamType.HALF_DUPLEX_BIDI_STREAM && !features.halfDuplexBidiOverHttp1) {
      return false;
    }
  }
  if (suite.reliesOnTlsClientCerts && !(c.tls && features.tlsClientCerts)) return false;
  if (suite.reliesOnConnectGet && !(c.protocol === Protocol.CONNECT && features.connectGet)) {
    return false;
  }
  if (suite.reliesOnMessageReceiveLimit && !features.messageReceiveLimit) return false;
  // Upstream never derives a Connect version mode from features, so such suites match no case.
  return suite.connectVersionMode === TestSuite_ConnectVersionMode.UNSPECIFIED;
}

function namePrefix(suite: TestSuite, c: ConfigCase): string[] {
  const parts = [suite.name];
  if (suite.relevantHttpVersions.length !== 1) parts.push(`HTTPVersion:${c.version}`);
  if (suite.relevantProtocols.length !== 1) {
    parts.push(`Protocol:${enumName(ProtocolSchema, c.protocol)}`);
  }
  if (suite.relevantCodecs.length !== 1) parts.push(`Codec:${enumName(CodecSchema, c.codec)}`);
  if (suite.relevantCompressions.length !== 1) {
    parts.push(`Compression:${enumName(CompressionSchema, c.compression)}`);
  }
  if (!suite.reliesOnTls) parts.push(`TLS:${c.tls}`);
  return parts;
}

/** Expands one server-mode suite into its permutations for servers with these features. */
export function expandSuite(suite: TestSuite, features: Features = serverFeatures): Permutation[] {
  if (suite.reliesOnTlsClientCerts && !suite.reliesOnTls) {
    throw new Error(`suite ${suite.name} relies on TLS client certs but not on TLS`);
  }
  const out: Permutation[] = [];
  const seen = new Set<string>();
  const pick = <T extends number>(relevant: T[], schemaValues: number[]): T[] =>
    relevant.length > 0 ? relevant : (schemaValues as T[]);
  for (const protocol of pick(suite.relevantProtocols, allValues(ProtocolSchema))) {
    for (const version of pick(suite.relevantHttpVersions, [1, 2, 3])) {
      for (const tls of suite.reliesOnTls ? [true] : [true, false]) {
        for (const codec of pick(suite.relevantCodecs, allValues(CodecSchema))) {
          for (const compression of pick(
            suite.relevantCompressions,
            allValues(CompressionSchema),
          )) {
            for (const streamType of [1, 2, 3, 4, 5] as StreamType[]) {
              const c: ConfigCase = { version, protocol, codec, compression, streamType, tls };
              if (!supported(features, suite, c)) continue;
              const prefix = namePrefix(suite, c);
              for (const testCase of suite.testCases) {
                if (testCase.request?.streamType !== streamType) continue;
                const perm = permutation(suite, testCase, c, prefix);
                if (seen.has(perm.name)) throw new Error(`duplicate test case ${perm.name}`);
                seen.add(perm.name);
                out.push(perm);
              }
            }
          }
        }
      }
    }
  }
  return out;
}

function permutation(
  suite: TestSuite,
  testCase: TestCase,
  c: ConfigCase,
  prefix: string[],
): Permutation {
  const original = testCase.request;
  if (original === undefined || original.testName === "") throw new Error("test case has no name");
  const cloned = clone(ClientCompatRequestSchema, original);
  if ((cloned.service ?? "") === "") {
    if ((cloned.method ?? "") !== "") {
      throw new Error(`${cloned.testName} names a method but no service`);
    }
    cloned.service = "connectrpc.conformance.v1.ConformanceService";
    cloned.method = defaultMethods[cloned.streamType] ?? "";
  } else if ((cloned.method ?? "") === "") {
    throw new Error(`${cloned.testName} names a service but no method`);
  }
  const simpleName = cloned.testName;
  const name = [...prefix, simpleName].join("/");
  cloned.testName = name;
  cloned.httpVersion = c.version;
  cloned.protocol = c.protocol;
  cloned.codec = c.codec;
  cloned.compression = c.compression;
  cloned.messageReceiveLimit = clientReceiveLimit;
  const expected =
    testCase.expectedResponse !== undefined
      ? clone(ClientResponseResultSchema, testCase.expectedResponse)
      : expectedResponse(cloned);
  return {
    suite: suite.name,
    name,
    simpleName,
    request: cloned,
    expected,
    otherAllowedErrorCodes: [...testCase.otherAllowedErrorCodes],
    useTls: c.tls,
    useTlsClientCerts: suite.reliesOnTlsClientCerts,
  };
}

function requestInfoOf(request: ClientCompatRequest): ConformancePayload_RequestInfo {
  return create(ConformancePayload_RequestInfoSchema, {
    requestHeaders: request.requestHeaders.map((h) => clone(HeaderSchema, h)),
    requests: [...request.requestMessages],
    timeoutMs: request.timeoutMs === undefined ? undefined : BigInt(request.timeoutMs),
  });
}

function firstDefinition<T>(request: ClientCompatRequest): T | undefined {
  const first = request.requestMessages[0];
  if (first === undefined) return undefined;
  const message = anyUnpack(first, conformanceRegistry) as
    | (Record<string, unknown> & { $typeName: string })
    | undefined;
  if (message === undefined) throw new Error(`${request.testName}: cannot unpack ${first.typeUrl}`);
  const desc = conformanceRegistry.getMessage(message.$typeName);
  if (desc?.fields.some((f) => f.localName === "responseDefinition") !== true) {
    throw new Error(`${request.testName}: ${message.$typeName} has no response definition`);
  }
  return message.responseDefinition as T | undefined;
}

/**
 * The response a conformant server gives to `request` (populateExpectedResponse upstream): the
 * headers, trailers, data and error its response definition asks for, with what the server
 * received echoed back as RequestInfo in the first payload, or in the error's details.
 */
export function expectedResponse(request: ClientCompatRequest): ClientResponseResult {
  switch (request.streamType) {
    case StreamType.UNARY:
    case StreamType.CLIENT_STREAM:
      return expectedUnary(request);
    case StreamType.SERVER_STREAM:
    case StreamType.HALF_DUPLEX_BIDI_STREAM:
    case StreamType.FULL_DUPLEX_BIDI_STREAM:
      return expectedStream(request);
    default:
      throw new Error(`${request.testName}: no stream type`);
  }
}

function expectedUnary(request: ClientCompatRequest): ClientResponseResult {
  const info = requestInfoOf(request);
  if (request.useGetHttpMethod) {
    // Only the parameters every implementation must send; `message` and `base64` vary.
    info.connectGetInfo = create(ConformancePayload_ConnectGetInfoSchema, {
      queryParams: [
        { name: "encoding", value: [request.codec === Codec.JSON ? "json" : "proto"] },
        { name: "connect", value: ["v1"] },
      ],
    });
  }
  const def = firstDefinition<UnaryResponseDefinition>(request);
  if (def === undefined) {
    return create(ClientResponseResultSchema, {
      payloads: [create(ConformancePayloadSchema, { requestInfo: info })],
    });
  }
  const expected = create(ClientResponseResultSchema, {
    responseHeaders: def.responseHeaders,
    responseTrailers: def.responseTrailers,
  });
  if (def.response.case === "error") {
    const error = clone(ErrorSchema, def.response.value);
    error.details.push(anyPack(ConformancePayload_RequestInfoSchema, info));
    expected.error = error;
  } else {
    const payload: ConformancePayload = create(ConformancePayloadSchema, { requestInfo: info });
    if (def.response.case === "responseData") payload.data = def.response.value;
    expected.payloads = [payload];
  }
  return expected;
}

function expectedStream(request: ClientCompatRequest): ClientResponseResult {
  const def = firstDefinition<StreamResponseDefinition>(request);
  if (def === undefined) return create(ClientResponseResultSchema);
  const expected = create(ClientResponseResultSchema, {
    responseHeaders: def.responseHeaders,
    responseTrailers: def.responseTrailers,
    error: def.error === undefined ? undefined : clone(ErrorSchema, def.error),
  });
  if (def.responseData.length === 0 && expected.error !== undefined) {
    // With no message to carry it, what the server received travels in the error.
    expected.error.details.push(
      anyPack(ConformancePayload_RequestInfoSchema, requestInfoOf(request)),
    );
  }
  expected.payloads = def.responseData.map((data, i) => {
    const payload = create(ConformancePayloadSchema, { data });
    if (request.streamType === StreamType.FULL_DUPLEX_BIDI_STREAM) {
      // Ping-pong: each response echoes the one request it answers.
      const echoed = request.requestMessages[i];
      payload.requestInfo = create(ConformancePayload_RequestInfoSchema, {
        requests: echoed === undefined ? [] : [echoed],
      });
      if (i === 0) {
        const info = requestInfoOf(request);
        payload.requestInfo.requestHeaders = info.requestHeaders;
        payload.requestInfo.timeoutMs = info.timeoutMs;
      }
    } else if (i === 0) {
      payload.requestInfo = requestInfoOf(request);
    }
    return payload;
  });
  return expected;
}

/** Every permutation of every server-mode suite, in suite-file order. */
export function expandAll(
  suites: LoadedSuite[],
  features: Features = serverFeatures,
): { permutations: Permutation[]; clientSuites: LoadedSuite[] } {
  const permutations: Permutation[] = [];
  const clientSuites: LoadedSuite[] = [];
  for (const loaded of suites) {
    if (loaded.suite === undefined) {
      clientSuites.push(loaded);
      continue;
    }
    permutations.push(...expandSuite(loaded.suite, features));
  }
  return { permutations, clientSuites };
}
