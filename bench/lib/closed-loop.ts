// A closed-loop load: `concurrency` workers each sending the next request as soon as the previous
// one is answered, a warm-up, then a measured window. Used where every request must differ (a new
// request_id per order), which the static-body tools cannot do.

/** What a closed-loop run measured. */
export interface ClosedLoopResult {
  seconds: number;
  /** Requests that completed successfully inside the measured window. */
  completed: number;
  /** Requests that failed inside the measured window. */
  errors: number;
  firstError: string | undefined;
  /** Every successful call, warm-up and the calls still running at the end included. */
  succeededTotal: number;
  /** Latency of each completed request, in milliseconds. */
  latencies: number[];
}

/** Runs `call(n)` from `concurrency` workers for `warmupSeconds` and then `seconds` measured. */
export async function closedLoop(options: {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  call: (n: number) => Promise<void>;
}): Promise<ClosedLoopResult> {
  let n = 0;
  let measuring = false;
  let stopping = false;
  const latencies: number[] = [];
  let errors = 0;
  let succeededTotal = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (!stopping) {
      const started = performance.now();
      try {
        await options.call(n++);
        succeededTotal++;
        if (measuring) latencies.push(performance.now() - started);
      } catch (error) {
        if (measuring) {
          errors++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000));
  measuring = true;
  const windowStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  measuring = false;
  const seconds = (performance.now() - windowStart) / 1000;
  stopping = true;
  await Promise.all(workers);
  return { seconds, completed: latencies.length, errors, firstError, succeededTotal, latencies };
}
