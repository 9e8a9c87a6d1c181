/** How reconnects are spaced: exponential growth from `initialMs` up to `maxMs`. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/** Fast first retries (a blip heals in a quarter second), then at most one attempt every 5 s. */
export const defaultBackoff: BackoffPolicy = { initialMs: 250, maxMs: 5_000 };

/**
 * The wait before reconnect attempt `attempt` (0 for the first): exponential with "equal jitter",
 * so that many browsers reconnecting to a restarted service do not all arrive at once.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = defaultBackoff,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
