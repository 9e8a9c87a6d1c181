export {
  type ChangeFeed,
  type ChangesThroughOptions,
  createChangeFeed,
  defaultRetention,
  type EntityKeyType,
  type Retention,
  sharedSnapshotPages,
  type WatchBatch,
  type WatchOptions,
} from "./change-feed/feed.ts";
export {
  appendChanges,
  appendChangesOn,
  appendStatement,
  type ChangeRecord,
  type ChangeType,
  changeLogTable,
  lockTransaction,
  type NewChange,
  revisionOf,
} from "./change-feed/log.ts";
export {
  type BreakerPolicy,
  type BreakerState,
  createUpstream,
  createUpstreamClient,
  type RetryPolicy,
  type Upstream,
  type UpstreamOptions,
} from "./client/upstream.ts";
export {
  contractCheck,
  createContractValidator,
  toRuleViolation,
  violationsOf,
} from "./contract/contract-rules.ts";
export {
  describeViolations,
  fieldsFirst,
  type RuleCheck,
  type RuleViolation,
} from "./contract/rule-violation.ts";
export {
  type AuthOptions,
  callerKey,
  callerOf,
  createAuthGate,
  createTokenExpiryInterceptor,
  methodsWithoutRule,
} from "./interceptors/auth.ts";
export {
  type CallContext,
  createCallContextInterceptor,
  currentCall,
  recordCalls,
} from "./interceptors/call-context.ts";
export {
  createDomainErrorMapper,
  createErrorInterceptor,
  isDatabaseUnavailable,
  mapDomainErrors,
  toPublicError,
} from "./interceptors/errors.ts";
export { createShutdownInterceptor } from "./interceptors/shutdown.ts";
export { createStreamLimitInterceptor, peerKey } from "./interceptors/stream-limit.ts";
export { createValidationInterceptor } from "./interceptors/validation.ts";
export {
  type CallEnd,
  type CallObserver,
  type ObservedCall,
  observeCalls,
} from "./observability/call-observers.ts";
export { createLogger, type Logger } from "./observability/logger.ts";
export { createMetrics, type Metrics, processRegistry } from "./observability/metrics.ts";
export { createRequestStats, type RequestStats } from "./observability/stats.ts";
export {
  createServerTracingInterceptor,
  startClientSpan,
  startTelemetry,
  traceFields,
  traceRepository,
} from "./observability/tracing.ts";
export { createHealthState, type HealthState, ServingStatus } from "./server/health.ts";
export { registerReflection } from "./server/reflection.ts";
export {
  defaultLimits,
  type Limits,
  type ServeOptions,
  type Server,
  serve,
} from "./server/serve.ts";
export {
  type AuthConfig,
  parseEnv,
  positiveInteger,
  type ServerConfig,
  type ServerEnv,
  serverEnvSchema,
  toServerConfig,
} from "./service/config.ts";
export {
  applyMigrations,
  checkDatabase,
  type Database,
  migrationCount,
  openDatabase,
  watchDatabaseHealth,
} from "./service/database.ts";
export {
  decodePageToken,
  encodePageToken,
  type PageFilters,
  pageSizeOf,
} from "./service/paging.ts";
export {
  type RunningService,
  type ServiceDefinition,
  serviceCredentials,
  startService,
} from "./service/start-service.ts";
export { stopOnSignals } from "./service/stop-on-signals.ts";
