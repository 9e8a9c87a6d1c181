// SeriesHistogram (src/metrics.ts) exposes what prom-client's own Histogram exposes for the same
// observations: the same lines in Prometheus text and the same values through the registry's JSON.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Histogram, Registry } from "prom-client";
import { SeriesHistogram } from "../src/observability/metrics.ts";

type Label = "method" | "code";

const buckets = [0.001, 0.01, 0.1, 1];
// On a bound (counted in that bucket), between bounds, below the first and above the last.
const observations: [Record<Label, string>, number][] = [
  [{ method: "GetUser", code: "ok" }, 0.0005],
  [{ method: "GetUser", code: "ok" }, 0.001],
  [{ method: "GetUser", code: "ok" }, 0.05],
  [{ method: "GetUser", code: "not_found" }, 0.1],
  [{ method: "GetUser", code: "ok" }, 3.5],
  [{ method: "ListUsers", code: "ok" }, 0.25],
  [{ method: "GetUser", code: "ok" }, 0.0099],
];

function registries() {
  const config = {
    name: "rpc_duration_seconds",
    help: "Duration of RPCs.",
    labelNames: ["method", "code"] as Label[],
    buckets,
  };
  const theirs = new Registry();
  const ours = new Registry();
  for (const registry of [theirs, ours]) registry.setDefaultLabels({ service: "users" });
  const reference = new Histogram<Label>({ ...config, registers: [theirs] });
  const histogram = new SeriesHistogram<Label>({ ...config, registers: [ours] });
  const series = new Map<string, ReturnType<typeof histogram.series>>();
  for (const [labels, value] of observations) {
    reference.observe(labels, value);
    const key = `${labels.method}/${labels.code}`;
    let held = series.get(key);
    if (held === undefined) {
      held = histogram.series(labels);
      series.set(key, held);
    }
    histogram.observeInto(held, value);
  }
  return { theirs, ours };
}

test("the text exposition matches prom-client's Histogram line for line", async () => {
  const { theirs, ours } = registries();
  const expected = await theirs.metrics();
  assert.match(
    expected,
    /^rpc_duration_seconds_bucket\{le="0.01",service="users",method="GetUser",code="ok"\} 3$/m,
  );
  assert.equal(await ours.metrics(), expected);
});

test("the JSON the registry gives matches prom-client's Histogram", async () => {
  const { theirs, ours } = registries();
  // Neither has exemplars: prom-client writes `exemplar: null` (or undefined) where ours has none.
  const withoutExemplars = (metrics: object[]) =>
    JSON.parse(JSON.stringify(metrics, (key, value) => (key === "exemplar" ? undefined : value)));
  const expected = withoutExemplars(await theirs.getMetricsAsJSON());
  assert.equal(expected[0].values.length, 3 * (buckets.length + 3));
  assert.deepEqual(withoutExemplars(await ours.getMetricsAsJSON()), expected);
});

test("reset() zeroes the series, which go on counting", async () => {
  const registry = new Registry();
  const histogram = new SeriesHistogram<Label>({
    name: "reset_seconds",
    help: "Reset.",
    labelNames: ["method", "code"],
    buckets,
    registers: [registry],
  });
  const series = histogram.series({ method: "GetUser", code: "ok" });
  histogram.observeInto(series, 0.5);
  registry.resetMetrics();
  histogram.observeInto(series, 0.005);
  const text = await registry.metrics();
  assert.match(text, /^reset_seconds_count\{method="GetUser",code="ok"\} 1$/m);
  assert.match(text, /^reset_seconds_sum\{method="GetUser",code="ok"\} 0.005$/m);
  assert.match(text, /^reset_seconds_bucket\{le="1",method="GetUser",code="ok"\} 1$/m);
});

test("a histogram with nothing observed shows only its help and type", async () => {
  const registry = new Registry();
  new SeriesHistogram<Label>({
    name: "idle_seconds",
    help: "Nothing yet.",
    labelNames: ["method", "code"],
    buckets,
    registers: [registry],
  });
  assert.equal(
    await registry.metrics(),
    "# HELP idle_seconds Nothing yet.\n# TYPE idle_seconds histogram\n",
  );
});
