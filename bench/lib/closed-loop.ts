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

/**
 * Runs `call(n, worker)` from `concurrency` workers (numbered from 0) for `warmupSeconds` and then
 * `seconds` measured. `onWindow` is awaited as the measured window opens and once it has closed,
 * for readings of counters that go with the window (the load goes on meanwhile).
 */
export async function closedLoop(options: {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  call: (n: number, worker: number) => Promise<void>;
  onWindow?: (edge: "open" | "close") => Promise<void>;
}): Promise<ClosedLoopResult> {
  let n = 0;
  let measuring = false;
  let stopping = false;
  const latencies: number[] = [];
  let errors = 0;
  let succeededTotal = 0;
  let firstError: string | undefined;
  const worker = async (index: number) => {
    while (!stopping) {
      const started = performance.now();
      try {
        await options.call(n++, index);
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
  const workers = Array.from({ length: options.concurrency }, (_, index) => worker(index));
  await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000));
  await options.onWindow?.("open");
  measuring = true;
  const windowStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  measuring = false;
  const seconds = (performance.now() - windowStart) / 1000;
  await options.onWindow?.("close");
  stopping = true;
  await Promise.all(workers);
  return { seconds, completed: latencies.length, errors, firstError, succeededTotal, latencies };
}
