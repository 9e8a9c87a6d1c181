import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Counter,
  collectDefaultMetrics,
  Histogram,
  type HistogramConfiguration,
  type MetricObjectWithValues,
  type MetricValueWithName,
  Registry,
} from "prom-client";
import { convertOnce } from "../change-feed/convert-once.ts";
import type { CallObserver } from "./call-observers.ts";

/**
 * Metrics of the process rather than of one server (outbound clients, change feeds); `/metrics`
 * serves them beside the server's own.
 */
export const processRegistry = new Registry();

/** The Prometheus metrics of one process. */
export interface Metrics {
  /** The registry `/metrics` serves. */
  registry: Registry;
  /** Records the duration and outcome of every RPC this server handles (see observeCalls). */
  observer: CallObserver<unknown>;
}

/** Creates the metrics of one service process, including Node's default process metrics. */
export function createMetrics(service: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const duration = new SeriesHistogram<DurationLabel>({
    name: "rpc_server_duration_seconds",
    help: "Duration of RPCs handled by this server, by method and Connect code; streams count until they end.",
    labelNames: ["rpc_service", "rpc_method", "code"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  // Each method's counts, found by its descriptor; the started counter reads them when scraped.
  const methods: MethodCounts[] = [];
  new Counter({
    name: "rpc_server_started_total",
    help: "RPCs this server started handling, by method.",
    labelNames: ["rpc_service", "rpc_method"],
    registers: [registry],
    collect() {
      this.reset();
      for (const method of methods) if (method.started > 0) this.inc(method.call, method.started);
    },
  });
  const countsFor = convertOnce((method: DescMethod): MethodCounts => {
    const counts: MethodCounts = {
      call: { rpc_service: method.parent.typeName, rpc_method: method.name },
      started: 0,
      outcomes: new Map(),
    };
    methods.push(counts);
    return counts;
  });
  const finish = (method: MethodCounts, durationMs: number, error: unknown) => {
    const code = error === undefined ? "ok" : codeName(ConnectError.from(error).code);
    let outcome = method.outcomes.get(code);
    if (outcome === undefined) {
      outcome = duration.series({ ...method.call, code });
      method.outcomes.set(code, outcome);
    }
    duration.observeInto(outcome, durationMs / 1000);
  };
  const observer: CallObserver<MethodCounts> = {
    start(req) {
      const method = countsFor(req.method);
      method.started++;
      return method;
    },
    end(method, call, { error, durationMs }) {
      // A stream that ends because the client went away (or its deadline passed) did not succeed,
      // even when the handler returned quietly on its aborted signal; and one the server stops
      // reading (return()) is counted too.
      // (A unary call's signal is left alone: the serving path makes it only when asked for.)
      const aborted = call.streaming && call.req.signal.aborted;
      finish(method, durationMs, error ?? (aborted ? abortReason(call.req.signal) : undefined));
    },
  };
  return { registry, observer };
}

type DurationLabel = "rpc_service" | "rpc_method" | "code";

interface MethodCounts {
  call: { rpc_service: string; rpc_method: string };
  /** Calls started. */
  started: number;
  /** The duration histogram's series of each outcome (by code). */
  outcomes: Map<string, HistogramSeries<DurationLabel>>;
}

/** The counts of one label set of a SeriesHistogram. */
export interface HistogramSeries<L extends string> {
  readonly labels: Record<L, string>;
  /** Observations per bucket (not cumulative); the last counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

type HistogramMetric<L extends string> = MetricObjectWithValues<MetricValueWithName<L>>;

/**
 * A prom-client Histogram observed through series its callers hold, one per label set. prom-client's
 * own observe() builds a label hash string and several objects on every call, about 5 % of the CPU
 * of a unary call (bench/README.md); here an observation adds to the arrays of its series, and the
 * exposition is built from them when scraped, as prom-client's get() builds it. prom-client has no
 * such API, hence this class.
 */
export class SeriesHistogram<L extends string> extends Histogram<L> {
  private readonly config: HistogramConfiguration<L> & { buckets: readonly number[] };
  private readonly all: HistogramSeries<L>[] = [];

  constructor(config: HistogramConfiguration<L> & { buckets: number[] }) {
    super(config);
    this.config = config;
  }

  /** Zeroes every series, as prom-client's reset() empties its own (the series stay held). */
  override reset(): void {
    super.reset();
    // Also called by prom-client's constructor, before this class's fields exist.
    for (const series of this.all ?? []) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }

  /** A new series for `labels`, to observe into. */
  series(labels: Record<L, string>): HistogramSeries<L> {
    const counts = new Float64Array(this.config.buckets.length + 1);
    const series = { labels, counts, sum: 0, count: 0 };
    this.all.push(series);
    return series;
  }

  /** Records `value` in `series`. */
  observeInto(series: HistogramSeries<L>, value: number): void {
    const bounds = this.config.buckets;
    let bucket = 0;
    while (bucket < bounds.length && value > (bounds[bucket] as number)) bucket++;
    series.counts[bucket] = (series.counts[bucket] as number) + 1;
    series.sum += value;
    series.count++;
  }

  override async get(): Promise<HistogramMetric<L>> {
    return this.metric(true);
  }

  /** What prom-client's registry reads for the text exposition, when a metric has it. */
  getForPromString(): Promise<HistogramMetric<L>> {
    return Promise.resolve(this.metric(false));
  }

  /**
   * The metric as prom-client's Histogram gives it: from get(), each value with all its labels;
   * for the text exposition, the series' labels apart (`sharedLabels`, which the registry writes
   * after the default labels and caches per object).
   */
  private metric(splay: boolean): HistogramMetric<L> {
    const { name, help, buckets, aggregator = "sum" } = this.config;
    const values: (MetricValueWithName<string> & { sharedLabels?: object })[] = [];
    const value = (own: object, series: HistogramSeries<L>, value: number, suffix: string) =>
      values.push(
        splay
          ? { labels: { ...own, ...series.labels }, value, metricName: `${name}${suffix}` }
          : { labels: own, sharedLabels: series.labels, value, metricName: `${name}${suffix}` },
      );
    for (const series of this.all) {
      let cumulative = 0;
      for (let bucket = 0; bucket < buckets.length; bucket++) {
        cumulative += series.counts[bucket] as number;
        value({ le: buckets[bucket] }, series, cumulative, "_bucket");
      }
      value({ le: "+Inf" }, series, series.count, "_bucket");
      value({}, series, series.sum, "_sum");
      value({}, series, series.count, "_count");
    }
    // prom-client's typings declare an enum for the type (and a collect function); it gives the
    // type's name.
    return { name, help, type: "histogram", values, aggregator } as unknown as HistogramMetric<L>;
  }
}

/** A Connect code as its snake_case wire name (`invalid_argument`). */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new ConnectError("canceled", Code.Canceled);
}
