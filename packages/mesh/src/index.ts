export {
  type AuthOptions,
  callerKey,
  callerOf,
  createAuthGate,
  createTokenExpiryInterceptor,
  methodsWithoutRule,
} from "./auth.ts";
export {
  type CallContext,
  createCallContextInterceptor,
  currentCall,
  recordCalls,
} from "./call-context.ts";
export {
  type CallEnd,
  type CallObserver,
  type ObservedCall,
  observeCalls,
} from "./call-observers.ts";
export {
  appendChanges,
  appendStatement,
  type ChangeFeed,
  type ChangeRecord,
  type ChangesThroughOptions,
  type ChangeType,
  changeLogTable,
  createChangeFeed,
  defaultRetention,
  type EntityKeyType,
  lockTransaction,
  type NewChange,
  type Retention,
  revisionOf,
  sharedSnapshotPages,
  type WatchBatch,
  type WatchOptions,
} from "./change-log.ts";
export {
  type BreakerPolicy,
  type BreakerState,
  createUpstream,
  createUpstreamClient,
  type RetryPolicy,
  type Upstream,
  type UpstreamOptions,
} from "./clients.ts";
export {
  type AuthConfig,
  parseEnv,
  type ServerConfig,
  type ServerEnv,
  serverEnvSchema,
  toServerConfig,
} from "./config.ts";
export {
  contractCheck,
  createContractValidator,
  toRuleViolation,
  violationsOf,
} from "./contract-rules.ts";
export {
  applyMigrations,
  checkDatabase,
  type Database,
  migrationCount,
  openDatabase,
  watchDatabaseHealth,
} from "./database.ts";
export {
  createDomainErrorMapper,
  createErrorInterceptor,
  isDatabaseUnavailable,
  mapDomainErrors,
  toPublicError,
} from "./errors.ts";
export { createHealthState, type HealthState, ServingStatus } from "./health.ts";
export { createLogger, type Logger } from "./logger.ts";
export { stopOnSignals } from "./main.ts";
export { createMetrics, type Metrics, processRegistry } from "./metrics.ts";
export { decodePageToken, encodePageToken, pageSizeOf } from "./paging.ts";
export { registerReflection } from "./reflection.ts";
export {
  describeViolations,
  fieldsFirst,
  type RuleCheck,
  type RuleViolation,
} from "./rule-violation.ts";
export { defaultLimits, type Limits, type ServeOptions, type Server, serve } from "./serve.ts";
export {
  type RunningService,
  type ServiceDefinition,
  serviceCredentials,
  startService,
} from "./service.ts";
export { createShutdownInterceptor } from "./shutdown.ts";
export { createRequestStats, type RequestStats } from "./stats.ts";
export { createStreamLimitInterceptor, peerKey } from "./stream-limit.ts";
export {
  createServerTracingInterceptor,
  startClientSpan,
  startTelemetry,
  traceFields,
  traceRepository,
} from "./tracing.ts";
export { createValidationInterceptor } from "./validation.ts";
