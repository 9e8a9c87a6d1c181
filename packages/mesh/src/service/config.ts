// zod's functional build: the services parse their environment once, at start-up, and the
// chainable build costs a start about 0.7 MB of bundle and a closure per method per schema.

import * as z from "zod/mini";
import { en } from "zod/v4/locales";
import { defaultLimits, type Limits } from "../server/serve.ts";

// Its messages in English, as the chainable build has them by default (this locale alone: the
// namespace of them all would bundle every language).
z.config(en());

const port = z.pipe(z.coerce.number(), z.int().check(z.minimum(0), z.maximum(65535)));
/** A whole number of at least 1, from an environment variable's text. */
export const positiveInteger = z.pipe(z.coerce.number(), z.int().check(z.positive()));
const list = z.pipe(
  z.string(),
  z.transform((value: string) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  ),
);
const optionalString = z.optional(z.string());

/** Environment variables every service reads; a service's own schema extends this one. */
export const serverEnvSchema = z.object({
  PORT: z.optional(port),
  HOST: optionalString,
  /** Absent: the embedded PostgreSQL that `npm start` runs (started here if it is not running). */
  DATABASE_URL: z.optional(z.url({ protocol: /^postgres(ql)?$/ })),
  /** Absent: `.data/postgres` at the repository root, the folder `npm start` uses. */
  LOCAL_POSTGRES_DIR: optionalString,
  LOCAL_POSTGRES_PORT: z._default(port, 54329),
  // The OpenTelemetry SDK reads the standard OTEL_* variables itself; these decide whether it runs.
  OTEL_SDK_DISABLED: z._default(z.enum(["true", "false"]), "false"),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalString,
  OTEL_TRACES_EXPORTER: optionalString,
  OTEL_SERVICE_NAME: optionalString,
  LOG_LEVEL: z._default(
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    "info",
  ),
  CORS_ORIGINS: z._default(
    list.check(
      z.refine(
        (origins: string[]) => !origins.includes("*"),
        "list the allowed origins; a wildcard is refused",
      ),
    ),
    ["http://localhost:3000", "http://127.0.0.1:3000"],
  ),
  TLS_CERT_FILE: optionalString,
  TLS_KEY_FILE: optionalString,
  MAX_MESSAGE_BYTES: z._default(positiveInteger, defaultLimits.maxMessageBytes),
  MAX_SEND_MESSAGE_BYTES: z._default(positiveInteger, defaultLimits.maxSendMessageBytes),
  MAX_CONCURRENT_STREAMS: z._default(positiveInteger, defaultLimits.maxConcurrentStreams),
  MAX_HEADER_BYTES: z._default(positiveInteger, defaultLimits.maxHeaderBytes),
  HEADERS_TIMEOUT_MS: z._default(positiveInteger, defaultLimits.headersTimeoutMs),
  IDLE_TIMEOUT_MS: z._default(positiveInteger, defaultLimits.idleTimeoutMs),
  MAX_TIMEOUT_MS: z._default(positiveInteger, defaultLimits.maxTimeoutMs),
  MAX_WATCHES_PER_CLIENT: z._default(positiveInteger, defaultLimits.maxStreamsPerClient),
  /**
   * On SIGTERM, how long to answer every call while reporting not ready before stopping: longer
   * than the edge's readiness polling (deploy/base/Caddyfile: every 2 s) when replicas run as plain
   * processes; 0 where something else waits first (a Kubernetes preStop).
   */
  DRAIN_DELAY_MS: z._default(
    z.pipe(z.coerce.number(), z.int().check(z.minimum(0), z.maximum(60_000))),
    0,
  ),
  /** "on" (the default) needs a key source and an issuer; "off" lets every call in. */
  AUTH: z._default(z.enum(["on", "off"]), "on"),
  /** Public keys that sign tokens: a JWKS endpoint, or a JWKS file. */
  AUTH_JWKS_URL: z.optional(z.url({ protocol: /^https?$/ })),
  AUTH_JWKS_FILE: optionalString,
  AUTH_ISSUER: z.optional(z.string().check(z.minLength(1))),
  AUTH_AUDIENCE: z._default(z.string().check(z.minLength(1)), "shop"),
  AUTH_ALGORITHMS: z._default(list, ["ES256"]),
  /** Services callable, and HTTP paths served, without a token. */
  AUTH_OPEN: z._default(list, [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "/metrics",
  ]),
  AUTH_MAX_TOKEN_BYTES: z._default(positiveInteger, 8 * 1024),
  /** This service's private JWK, with which it signs its own identity for calls to others. */
  AUTH_SERVICE_KEY_FILE: optionalString,
});

/** The parsed common environment. */
export type ServerEnv = z.infer<typeof serverEnvSchema>;

/** The settings every service has, derived from the common environment. */
export interface ServerConfig {
  port: number;
  host: string | undefined;
  databaseUrl: string | undefined;
  localPostgres: { dataDir: string | undefined; port: number };
  logLevel: string;
  /** Trace export: on when an OTLP endpoint or a traces exporter is configured. */
  telemetry: { enabled: boolean; serviceName: string | undefined };
  corsOrigins: string[];
  tls: { certFile: string; keyFile: string } | undefined;
  limits: Limits;
  /** On SIGTERM, how long to keep serving while not ready. */
  drainDelayMs: number;
  /** Token checks; undefined when AUTH=off. */
  auth: AuthConfig | undefined;
}

/** Where a service finds the keys that sign tokens, and what it accepts. */
export interface AuthConfig {
  jwksUrl: string | undefined;
  jwksFile: string | undefined;
  issuer: string;
  audience: string;
  algorithms: string[];
  open: string[];
  maxTokenBytes: number;
  /** The service's own signing key, for its calls to other services. */
  serviceKeyFile: string | undefined;
}

/** Builds the common settings from the parsed environment, with `defaultPort` when PORT is unset. */
export function toServerConfig(env: ServerEnv, defaultPort: number): ServerConfig {
  if (Boolean(env.TLS_CERT_FILE) !== Boolean(env.TLS_KEY_FILE)) {
    throw new Error("TLS_CERT_FILE and TLS_KEY_FILE must be set together");
  }
  if (env.AUTH === "on" && (!(env.AUTH_JWKS_URL || env.AUTH_JWKS_FILE) || !env.AUTH_ISSUER)) {
    throw new Error(
      "authentication is on: set AUTH_ISSUER and AUTH_JWKS_URL or AUTH_JWKS_FILE " +
        "(`npm start` sets them up), or AUTH=off to let every call in",
    );
  }
  return {
    port: env.PORT ?? defaultPort,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    localPostgres: { dataDir: env.LOCAL_POSTGRES_DIR, port: env.LOCAL_POSTGRES_PORT },
    logLevel: env.LOG_LEVEL,
    telemetry: {
      enabled:
        env.OTEL_SDK_DISABLED !== "true" &&
        Boolean(
          env.OTEL_EXPORTER_OTLP_ENDPOINT ||
            env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
            (env.OTEL_TRACES_EXPORTER && env.OTEL_TRACES_EXPORTER !== "none"),
        ),
      serviceName: env.OTEL_SERVICE_NAME,
    },
    corsOrigins: env.CORS_ORIGINS,
    tls:
      env.TLS_CERT_FILE && env.TLS_KEY_FILE
        ? { certFile: env.TLS_CERT_FILE, keyFile: env.TLS_KEY_FILE }
        : undefined,
    limits: {
      maxMessageBytes: env.MAX_MESSAGE_BYTES,
      maxSendMessageBytes: env.MAX_SEND_MESSAGE_BYTES,
      maxConcurrentStreams: env.MAX_CONCURRENT_STREAMS,
      maxHeaderBytes: env.MAX_HEADER_BYTES,
      headersTimeoutMs: env.HEADERS_TIMEOUT_MS,
      idleTimeoutMs: env.IDLE_TIMEOUT_MS,
      maxTimeoutMs: env.MAX_TIMEOUT_MS,
      maxStreamsPerClient: env.MAX_WATCHES_PER_CLIENT,
    },
    drainDelayMs: env.DRAIN_DELAY_MS,
    auth:
      env.AUTH === "on" && env.AUTH_ISSUER
        ? {
            jwksUrl: env.AUTH_JWKS_URL,
            jwksFile: env.AUTH_JWKS_FILE,
            issuer: env.AUTH_ISSUER,
            audience: env.AUTH_AUDIENCE,
            algorithms: env.AUTH_ALGORITHMS,
            open: env.AUTH_OPEN,
            maxTokenBytes: env.AUTH_MAX_TOKEN_BYTES,
            serviceKeyFile: env.AUTH_SERVICE_KEY_FILE,
          }
        : undefined,
  };
}

/** Parses `env` with `schema`, throwing one error that lists every bad variable. */
export function parseEnv<S extends z.ZodMiniType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new Error(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return result.data;
}
