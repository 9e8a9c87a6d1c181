import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextKey,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { type AccessRule, access } from "@shop/api/shop/mesh/v1/access_pb";
import { type Identity, InvalidTokenError, KeysUnavailableError, type Verifier } from "@shop/auth";
import { Counter } from "prom-client";
import { convertOnce } from "../change-feed/convert-once.ts";
import { codeName, processRegistry } from "../observability/metrics.ts";
import { type AnyRequest, type Next, onStreamsOnly, stopStreamOn } from "../protocol/streams.ts";

/** How a server authenticates and authorizes calls. */
export interface AuthOptions {
  verifier: Verifier;
  /**
   * Services (full names such as "grpc.health.v1.Health") callable without a token, and HTTP paths
   * ("/metrics") served without one.
   */
  open: ReadonlySet<string>;
}

const refused = new Counter({
  name: "rpc_server_refused_total",
  help: "Calls refused before reading their request: no valid token, or not allowed by the method's access rule.",
  labelNames: ["rpc_service", "rpc_method", "code"],
  registers: [processRegistry],
});

/** The verified caller of the current call; undefined when authentication is off. */
export const callerKey = createContextKey<Identity | undefined>(undefined, {
  description: "the verified caller",
});

/** The verified caller of a handler's call, if authentication is on. */
export function callerOf(context: HandlerContext): Identity | undefined {
  return context.values.get(callerKey);
}

/**
 * The services a server offers that no declared rule covers: a method of the application that
 * lacks `(shop.mesh.v1.access)` would be callable by no one, so the server refuses to start.
 */
export function methodsWithoutRule(
  services: readonly DescService[],
  open: ReadonlySet<string>,
): string[] {
  return services
    .filter((service) => !open.has(service.typeName))
    .flatMap((service) => service.methods)
    .filter((method) => ruleOf(method) === null)
    .map((method) => `${method.parent.typeName}/${method.name}`);
}

/** Throws when a method of `services` has no access rule (see methodsWithoutRule). */
export function assertEveryMethodHasRule(
  services: readonly DescService[],
  open: ReadonlySet<string>,
): void {
  const missing = methodsWithoutRule(services, open);
  if (missing.length > 0) {
    throw new Error(`no access rule (shop.mesh.v1.access) for ${missing.join(", ")}`);
  }
}

/**
 * Authenticates every call to a service not in `open` with its bearer token, then authorizes it
 * against the method's declared `(shop.mesh.v1.access)` rule, and puts the caller in the call's
 * context values (see `callerOf`). Connect runs it as the router's request gate: after the
 * headers, before any of the body is read, decompressed or parsed, so a refused call costs
 * nothing more and no handler or interceptor runs for it.
 */
export function createAuthGate(options: AuthOptions): (context: HandlerContext) => Promise<void> {
  const { verifier, open } = options;
  return async (context) => {
    if (open.has(context.service.typeName)) return;
    try {
      const caller = await authenticate(verifier, context.requestHeader.get("authorization"));
      authorize(context.method, caller);
      context.values.set(callerKey, caller);
    } catch (error) {
      // The runtime's other metrics never see these calls: they end before any interceptor.
      refused.inc({
        rpc_service: context.service.typeName,
        rpc_method: context.method.name,
        code: codeName(ConnectError.from(error).code),
      });
      throw error;
    }
  };
}

/** Ends a stream with `unauthenticated` when the token that opened it expires. */
export function createTokenExpiryInterceptor(): Interceptor {
  const endingAtExpiry = async (next: Next, req: AnyRequest) => {
    const res = await next(req);
    const expiresAt = req.contextValues.get(callerKey)?.expiresAt;
    if (!res.stream || expiresAt === undefined) return res;
    return { ...res, message: endAtExpiry(res.message, expiresAt) };
  };
  return onStreamsOnly(endingAtExpiry);
}

async function authenticate(verifier: Verifier, header: string | null): Promise<Identity> {
  const match = header === null ? null : /^Bearer +(\S+) *$/i.exec(header);
  if (!match?.[1]) {
    throw new ConnectError(
      'missing bearer token: send the header "authorization: Bearer <token>"',
      Code.Unauthenticated,
    );
  }
  try {
    return await verifier(match[1]);
  } catch (error) {
    if (error instanceof InvalidTokenError) {
      throw new ConnectError(error.message, Code.Unauthenticated);
    }
    if (error instanceof KeysUnavailableError) {
      throw new ConnectError("tokens cannot be checked right now; try again", Code.Unavailable);
    }
    throw error;
  }
}

/**
 * Checks the bearer token of a plain HTTP request (`/metrics` when it is not open): returns what is
 * wrong with it, or undefined when it is valid.
 */
export async function authenticateHttp(
  auth: AuthOptions,
  header: string | undefined,
): Promise<string | undefined> {
  try {
    await authenticate(auth.verifier, header ?? null);
    return undefined;
  } catch (error) {
    return error instanceof ConnectError ? error.rawMessage : "unauthenticated";
  }
}

// Reading an option decodes it from the descriptor, so each method's rule is read once.
const ruleOf = convertOnce((method: DescMethod): AccessRule | null =>
  hasOption(method, access) ? getOption(method, access) : null,
);

function authorize(method: DescMethod, caller: Identity): void {
  const name = `${method.parent.typeName}/${method.name}`;
  const rule = ruleOf(method);
  if (rule === null) {
    throw new ConnectError(`${name} has no access rule`, Code.PermissionDenied);
  }
  if (rule.roles.length > 0 && !caller.roles.some((role) => rule.roles.includes(role))) {
    const needed =
      rule.roles.length === 1
        ? `the role ${rule.roles[0]}`
        : `one of the roles ${rule.roles.join(", ")}`;
    throw new ConnectError(
      `${name} needs ${needed}; the token has ${caller.roles.length > 0 ? caller.roles.join(", ") : "no roles"}`,
      Code.PermissionDenied,
    );
  }
}

// setTimeout takes at most 2^31-1 ms; a later expiry is checked again when that timer fires.
const maxTimerMs = 2 ** 31 - 1;

/**
 * Passes a stream's messages on until `expiresAt`, then ends it with `unauthenticated`, also while
 * the stream waits for its next message. (Connect offers no per-call timer for this.)
 */
function endAtExpiry<T>(messages: AsyncIterable<T>, expiresAt: number): AsyncIterable<T> {
  return stopStreamOn(messages, (stop) => {
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const left = expiresAt - Date.now();
      if (left <= 0) stop(new ConnectError("token expired", Code.Unauthenticated));
      else timer = setTimeout(check, Math.min(left, maxTimerMs));
    };
    check();
    return () => clearTimeout(timer);
  });
}
