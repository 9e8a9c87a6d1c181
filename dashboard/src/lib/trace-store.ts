// The most recent traces the dashboard's OTLP receiver got, in its server's memory, within a bound.
import type { SpanRecord } from "./otlp.ts";

/** Traces kept at most; the least recently changed go first. */
const maxTraces = 1_000;
/** Spans kept at most, over all traces. */
const maxSpans = 50_000;

/** A trace as the list shows it. */
export interface TraceSummary {
  traceId: string;
  /** The root span's name (the first call from outside), or the earliest span's. */
  root: string;
  /** The services that recorded its spans, in the order they first appear. */
  services: string[];
  startMs: number;
  durationMs: number;
  spans: number;
  error: boolean;
}

/** The receiver's store: spans go in as exports come, grouped by trace. */
export interface TraceStore {
  add(spans: readonly SpanRecord[]): void;
  /** The traces, newest first. */
  list(): TraceSummary[];
  /** The spans of one trace, earliest first; undefined when it is not (or no longer) kept. */
  get(traceId: string): SpanRecord[] | undefined;
}

export function createTraceStore(limits = { maxTraces, maxSpans }): TraceStore {
  // A Map keeps insertion order: a trace that changes moves to the end, the first one is the
  // least recently changed.
  const traces = new Map<string, SpanRecord[]>();
  let spanCount = 0;
  return {
    add(spans) {
      for (const span of spans) {
        const kept = traces.get(span.traceId) ?? [];
        traces.delete(span.traceId);
        // An exporter may send a span again (a retried export): it is kept once.
        if (!kept.some((other) => other.spanId === span.spanId)) {
          kept.push(span);
          spanCount++;
        }
        traces.set(span.traceId, kept);
      }
      for (const [traceId, kept] of traces) {
        if (traces.size <= limits.maxTraces && spanCount <= limits.maxSpans) break;
        traces.delete(traceId);
        spanCount -= kept.length;
      }
    },
    list() {
      return [...traces.values()].map(summarize).sort((a, b) => b.startMs - a.startMs);
    },
    get(traceId) {
      const kept = traces.get(traceId);
      return kept && [...kept].sort((a, b) => a.startMs - b.startMs);
    },
  };
}

function summarize(spans: SpanRecord[]): TraceSummary {
  const ids = new Set(spans.map((span) => span.spanId));
  const earliest = spans.reduce((a, b) => (b.startMs < a.startMs ? b : a));
  // The root: a span without a parent, else one whose parent was not exported here (a caller's).
  const root =
    spans.find((span) => span.parentSpanId === "") ??
    spans.find((span) => !ids.has(span.parentSpanId)) ??
    earliest;
  const end = Math.max(...spans.map((span) => span.startMs + span.durationMs));
  const services: string[] = [];
  for (const span of [...spans].sort((a, b) => a.startMs - b.startMs)) {
    if (span.service && !services.includes(span.service)) services.push(span.service);
  }
  return {
    traceId: root.traceId,
    root: root.name,
    services,
    startMs: earliest.startMs,
    durationMs: end - earliest.startMs,
    spans: spans.length,
    error: spans.some((span) => span.error),
  };
}

const key = Symbol.for("shop.dashboard.traceStore");

/**
 * The dashboard server's one store. Next.js may bundle a module once per route: the store lives on
 * globalThis so that the receiver and the pages' routes share it.
 */
export function traceStore(): TraceStore {
  const holder = globalThis as unknown as Record<symbol, TraceStore | undefined>;
  holder[key] ??= createTraceStore();
  return holder[key];
}
