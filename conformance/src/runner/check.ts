// Judges what a server answered against what the suite expects, with the leniencies of the official
// runner (connectrpc/conformance, internal/app/connectconformance/results.go): only expected
// headers are checked, comma-joined values count as separate values, unary errors may carry all
// metadata as headers or as trailers, a server may report a slightly smaller timeout than sent,
// and a server may cancel an HTTP/2 stream instead of answering "deadline exceeded".
import { equals } from "@bufbuild/protobuf";
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import type { ClientResponseResult } from "@shop/api/connectrpc/conformance/v1/client_compat_pb";
import {
  Code,
  CodeSchema,
  HTTPVersion,
  StreamType,
} from "@shop/api/connectrpc/conformance/v1/config_pb";
import {
  type Error as ConformanceError,
  type ConformancePayload,
  type ConformancePayload_RequestInfo,
  ConformancePayload_RequestInfoSchema,
  type Header,
} from "@shop/api/connectrpc/conformance/v1/service_pb";
import { conformanceRegistry, type Permutation } from "./suites.ts";

/** How much smaller than the sent timeout a server may report it (time spent before the handler). */
const timeoutGraceMs = 500n;

/** Every way `actual` departs from what `perm` expects, plus the client's wire feedback; empty: pass. */
export function check(perm: Permutation, actual: ClientResponseResult): string[] {
  const expected = perm.expected;
  const errors: string[] = [];
  let otherCodes = perm.otherAllowedErrorCodes;
  if (
    perm.request.timeoutMs !== undefined &&
    expected.error?.code === Code.DEADLINE_EXCEEDED &&
    perm.request.httpVersion > HTTPVersion.HTTP_VERSION_1 &&
    otherCodes.length === 0
  ) {
    // Over HTTP/2 a server may just reset the stream of a call whose deadline passed.
    otherCodes = [Code.CANCELED];
  }
  errors.push(...checkError(expected.error, actual.error, otherCodes));
  errors.push(...checkPayloads(expected.payloads, actual.payloads));

  const unaryLike =
    perm.request.streamType === StreamType.UNARY ||
    perm.request.streamType === StreamType.CLIENT_STREAM;
  if (expected.payloads.length === 0 && expected.error !== undefined && unaryLike) {
    // An error of a unary call may carry headers and trailers as one bag of metadata.
    const attributed = [
      ...checkHeaders("response headers", expected.responseHeaders, actual.responseHeaders),
      ...checkHeaders("response trailers", expected.responseTrailers, actual.responseTrailers),
    ];
    if (attributed.length > 0) {
      const merged = mergeHeaders(expected.responseHeaders, expected.responseTrailers);
      const asHeaders = checkHeaders("response metadata", merged, actual.responseHeaders);
      const asTrailers = checkHeaders("response metadata", merged, actual.responseTrailers);
      if (asHeaders.length > 0 && asTrailers.length > 0) errors.push(...attributed);
    }
  } else {
    errors.push(
      ...checkHeaders("response headers", expected.responseHeaders, actual.responseHeaders),
    );
    errors.push(
      ...checkHeaders("response trailers", expected.responseTrailers, actual.responseTrailers),
    );
  }
  if (
    expected.httpStatusCode !== undefined &&
    actual.httpStatusCode !== undefined &&
    expected.httpStatusCode !== actual.httpStatusCode
  ) {
    errors.push(
      `HTTP status code: wanted ${expected.httpStatusCode}, got ${actual.httpStatusCode}`,
    );
  }
  errors.push(...actual.feedback);
  return errors;
}

function mergeHeaders(a: Header[], b: Header[]): Header[] {
  const merged = new Map<string, string[]>();
  for (const h of a) merged.set(h.name.toLowerCase(), [...h.value]);
  for (const h of b) {
    const name = h.name.toLowerCase();
    merged.set(name, [...(merged.get(name) ?? []), ...h.value]);
  }
  return [...merged].map(([name, value]) => ({ name, value }) as Header);
}

/** Splits comma-joined values, trimming the one space a library may add around each comma. */
function canonicalValues(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    const parts = value.split(",");
    parts.forEach((part, i) => {
      let p = part;
      if (i > 0 && p.startsWith(" ")) p = p.slice(1);
      if (i < parts.length - 1 && p.endsWith(" ")) p = p.slice(0, -1);
      out.push(p);
    });
  }
  return out;
}

function checkHeaders(what: string, expected: Header[], actual: Header[]): string[] {
  const errors: string[] = [];
  const actualByName = new Map<string, string[]>();
  for (const h of actual) actualByName.set(h.name.toLowerCase(), h.value);
  for (const h of expected) {
    const name = h.name.toLowerCase();
    const values = actualByName.get(name);
    if (values === undefined) {
      errors.push(`actual ${what} missing ${JSON.stringify(name)}`);
      continue;
    }
    const want = canonicalValues(h.value);
    const got = canonicalValues(values);
    if (want.length !== got.length || want.some((v, i) => v !== got[i])) {
      errors.push(
        `${what} has incorrect values for ${JSON.stringify(name)}: expected ${JSON.stringify(h.value)}, got ${JSON.stringify(got)}`,
      );
    }
  }
  return errors;
}

function sameAny(a: Any, b: Any): boolean {
  if (a.typeUrl !== b.typeUrl) return false;
  const desc = conformanceRegistry.getMessage(a.typeUrl.slice(a.typeUrl.lastIndexOf("/") + 1));
  if (desc === undefined) return Buffer.from(a.value).equals(Buffer.from(b.value));
  const ma = anyUnpack(a, desc);
  const mb = anyUnpack(b, desc);
  return (
    ma !== undefined && mb !== undefined && equals(desc, ma, mb, { registry: conformanceRegistry })
  );
}

function checkRequestInfo(
  expected: ConformancePayload_RequestInfo | undefined,
  actual: ConformancePayload_RequestInfo | undefined,
  withHeaders: boolean,
): string[] {
  const errors: string[] = [];
  if (withHeaders) {
    errors.push(
      ...checkHeaders(
        "request headers",
        expected?.requestHeaders ?? [],
        actual?.requestHeaders ?? [],
      ),
    );
    if (expected?.timeoutMs !== undefined) {
      const max = expected.timeoutMs;
      const min = max - timeoutGraceMs < 0n ? 0n : max - timeoutGraceMs;
      if (actual?.timeoutMs === undefined) {
        errors.push(`server did not echo back a timeout but one was expected (${max} ms)`);
      } else if (actual.timeoutMs > max || actual.timeoutMs < min) {
        errors.push(
          `server echoed back a timeout (${actual.timeoutMs} ms) that did not match expected (${max} ms)`,
        );
      }
    } else if (actual?.timeoutMs !== undefined) {
      errors.push(`server echoed back a timeout (${actual.timeoutMs} ms) but none was expected`);
    }
    const wantQuery = expected?.connectGetInfo?.queryParams ?? [];
    const gotQuery = actual?.connectGetInfo?.queryParams ?? [];
    if (wantQuery.length > 0 && gotQuery.length > 0) {
      errors.push(...checkHeaders("request query params", wantQuery, gotQuery));
    }
  }
  const want = expected?.requests ?? [];
  const got = actual?.requests ?? [];
  if (want.length !== got.length) {
    errors.push(`expecting ${want.length} request messages to be described but got ${got.length}`);
  }
  for (let i = 0; i < Math.min(want.length, got.length); i++) {
    const w = want[i];
    const g = got[i];
    if (w !== undefined && g !== undefined && !sameAny(w, g)) {
      errors.push(`request #${i + 1}: did not survive round-trip`);
    }
  }
  return errors;
}

function checkPayloads(expected: ConformancePayload[], actual: ConformancePayload[]): string[] {
  const errors: string[] = [];
  if (expected.length !== actual.length) {
    errors.push(`expecting ${expected.length} response messages but got ${actual.length}`);
  }
  for (let i = 0; i < Math.min(expected.length, actual.length); i++) {
    const want = expected[i];
    const got = actual[i];
    if (want === undefined || got === undefined) continue;
    if (!Buffer.from(want.data).equals(Buffer.from(got.data))) {
      errors.push(
        `response #${i + 1}: expecting data ${Buffer.from(want.data).toString("hex")}, got ${Buffer.from(got.data).toString("hex")}`,
      );
    }
    errors.push(...checkRequestInfo(want.requestInfo, got.requestInfo, i === 0));
  }
  return errors;
}

function codeName(code: number): string {
  return CodeSchema.values.find((v) => v.number === code)?.name ?? String(code);
}

function describe(error: ConformanceError): string {
  return `{code: ${codeName(error.code)}, message: ${JSON.stringify(error.message ?? "")}}`;
}

function checkError(
  expected: ConformanceError | undefined,
  actual: ConformanceError | undefined,
  otherCodes: number[],
): string[] {
  if (expected === undefined && actual === undefined) return [];
  if (expected === undefined && actual !== undefined) {
    return [`received an unexpected error ${describe(actual)}`];
  }
  if (expected !== undefined && actual === undefined)
    return ["expecting an error but received none"];
  if (expected === undefined || actual === undefined) return [];
  const errors: string[] = [];
  if (expected.code !== actual.code && !otherCodes.includes(actual.code)) {
    const codes = [expected.code, ...otherCodes].map(codeName).join(" or ");
    errors.push(`actual error ${describe(actual)} does not match expected code ${codes}`);
  }
  if (expected.message !== undefined && expected.message !== actual.message) {
    errors.push(
      `actual error ${describe(actual)} does not match expected message ${JSON.stringify(expected.message)}`,
    );
  }
  if (expected.details.length !== actual.details.length) {
    errors.push(
      `actual error contains ${actual.details.length} details; expecting ${expected.details.length}`,
    );
  }
  const infoUrl = `type.googleapis.com/${ConformancePayload_RequestInfoSchema.typeName}`;
  for (let i = 0; i < Math.min(expected.details.length, actual.details.length); i++) {
    const want = expected.details[i];
    const got = actual.details[i];
    if (want === undefined || got === undefined) continue;
    if (want.typeUrl === infoUrl && got.typeUrl === infoUrl) {
      const wantInfo = anyUnpack(want, ConformancePayload_RequestInfoSchema);
      const gotInfo = anyUnpack(got, ConformancePayload_RequestInfoSchema);
      errors.push(...checkRequestInfo(wantInfo, gotInfo, true));
    } else if (!sameAny(want, got)) {
      errors.push(
        `actual error detail #${i + 1} (${got.typeUrl}) does not match expected (${want.typeUrl})`,
      );
    }
  }
  return errors;
}
