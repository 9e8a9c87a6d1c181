"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import type { AttributeValue, SpanRecord } from "../lib/otlp.ts";
import type { TraceSummary } from "../lib/trace-store.ts";
import { useIsAdmin, useSession } from "./shop-provider.tsx";

/** How often the list asks for new traces. */
const refreshMs = 1_000;

/** GETs one of the dashboard's trace routes with the session's token; the JSON, or why not. */
function useTraceApi<T>(path: string, every: number | undefined) {
  const { session } = useSession();
  const admin = useIsAdmin();
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  useEffect(() => {
    if (!admin) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const token = await session.token().catch(() => undefined);
        const response = await fetch(path, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
          cache: "no-store",
        });
        const body = (await response.json()) as T & { error?: string };
        if (stopped) return;
        setState(response.ok ? { data: body } : { error: body.error ?? `${response.status}` });
      } catch (error) {
        if (!stopped) setState({ error: error instanceof Error ? error.message : String(error) });
      }
      if (!stopped && every !== undefined) timer = setTimeout(load, every);
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [admin, path, every, session]);
  return { admin, ...state };
}

/**
 * The traces the dashboard's OTLP receiver keeps (admins), newest first: root call, services,
 * duration, errors. `npm start` points the services' exporters at it, so no Jaeger is needed.
 */
export function TracesView() {
  const { admin, data, error } = useTraceApi<{ traces: TraceSummary[] }>("/api/traces", refreshMs);
  if (!admin) return <AdminsOnly />;
  const traces = data?.traces ?? [];
  return (
    <div className="page">
      <div className="page-title">
        <h1>Traces</h1>
      </div>
      <section className="card" aria-labelledby="traces-title">
        <div className="card-title">
          <h2 id="traces-title">Recent traces</h2>
          <span className="muted" data-count="traces">
            {data ? `${traces.length} kept` : ""}
          </span>
        </div>
        {error && <p className="outcome error">Could not list the traces: {error}</p>}
        {traces.length === 0 ? (
          <p className="empty">
            No traces yet. The services send theirs here (OTLP to /v1/traces) when `npm start` runs
            them.
          </p>
        ) : (
          <div className="table-scroll">
            <table>
              <caption className="visually-hidden">Traces, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Root</th>
                  <th scope="col">Services</th>
                  <th scope="col" className="number">
                    Spans
                  </th>
                  <th scope="col" className="number">
                    ms
                  </th>
                  <th scope="col" className="optional">
                    Started
                  </th>
                </tr>
              </thead>
              <tbody>
                {traces.map((trace) => (
                  <tr key={trace.traceId} data-trace={trace.traceId}>
                    <td>
                      <Link href={`/traces/${trace.traceId}`}>{trace.root}</Link>
                      {trace.error && <span className="tag tag-warn">error</span>}
                    </td>
                    <td className="services">{trace.services.join(" → ")}</td>
                    <td className="number">{trace.spans}</td>
                    <td className="number">{trace.durationMs.toFixed(1)}</td>
                    <td className="optional muted">
                      {new Date(trace.startMs).toLocaleTimeString()}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

/** One trace as a waterfall: each span on the trace's time line, under its parent. */
export function TraceView({ traceId }: { traceId: string }) {
  const { admin, data, error } = useTraceApi<{ spans: SpanRecord[] }>(
    `/api/traces/${encodeURIComponent(traceId)}`,
    undefined,
  );
  const [open, setOpen] = useState<string>();
  if (!admin) return <AdminsOnly />;
  const spans = data ? ordered(data.spans) : [];
  const start = Math.min(...spans.map(({ span }) => span.startMs));
  const end = Math.max(...spans.map(({ span }) => span.startMs + span.durationMs));
  const total = Math.max(end - start, 0.001);
  return (
    <div className="page">
      <div className="page-title">
        <h1>Trace</h1>
        <code>{traceId}</code>
      </div>
      <p>
        <Link href="/traces">All traces</Link>
      </p>
      {error && <p className="outcome error">{error}</p>}
      {data && (
        <section className="card" aria-label="Waterfall">
          <p className="muted">
            {spans.length} spans, {total.toFixed(1)} ms. Select a span for its attributes and
            events.
          </p>
          <ol className="waterfall">
            {spans.map(({ span, depth }) => (
              <li key={span.spanId} data-span={span.name} data-service={span.service}>
                <button
                  type="button"
                  className="waterfall-row"
                  aria-expanded={open === span.spanId}
                  onClick={() => setOpen(open === span.spanId ? undefined : span.spanId)}
                >
                  <span className="waterfall-name" style={{ paddingLeft: `${depth * 1.1}rem` }}>
                    <span className="tag tag-muted">{span.service}</span> {span.name}{" "}
                    <span className="muted">{span.kind}</span>
                  </span>
                  <span className="waterfall-track">
                    <span
                      className={`waterfall-bar${span.error ? " error" : ""}`}
                      style={{
                        left: `${((span.startMs - start) / total) * 100}%`,
                        width: `${Math.max((span.durationMs / total) * 100, 0.5)}%`,
                      }}
                    />
                  </span>
                  <span className="number">{span.durationMs.toFixed(2)} ms</span>
                </button>
                {open === span.spanId && <SpanDetails span={span} start={start} />}
              </li>
            ))}
          </ol>
        </section>
      )}
    </div>
  );
}

function SpanDetails({ span, start }: { span: SpanRecord; start: number }) {
  return (
    <div className="span-details">
      {span.error && <p className="outcome error">{span.statusMessage || "failed"}</p>}
      <dl>
        {Object.entries(span.attributes).map(([key, value]) => (
          <div key={key} data-attribute={key}>
            <dt>{key}</dt>
            <dd>{show(value)}</dd>
          </div>
        ))}
      </dl>
      {span.events.length > 0 && (
        <ul className="span-events">
          {span.events.map((event, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a span's events, in order
            <li key={i}>
              +{(event.timeMs - start).toFixed(2)} ms <strong>{event.name}</strong>{" "}
              {Object.entries(event.attributes)
                .map(([key, value]) => `${key}=${show(value)}`)
                .join(" ")}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function show(value: AttributeValue): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The spans depth first: each under its parent, children by start time. */
function ordered(spans: SpanRecord[]): { span: SpanRecord; depth: number }[] {
  const ids = new Set(spans.map((span) => span.spanId));
  const children = new Map<string, SpanRecord[]>();
  for (const span of spans) {
    const parent = ids.has(span.parentSpanId) ? span.parentSpanId : "";
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const out: { span: SpanRecord; depth: number }[] = [];
  const visit = (parent: string, depth: number) => {
    for (const span of (children.get(parent) ?? []).sort((a, b) => a.startMs - b.startMs)) {
      out.push({ span, depth });
      visit(span.spanId, depth + 1);
    }
  };
  visit("", 0);
  return out;
}

function AdminsOnly() {
  return (
    <div className="page">
      <h1>Traces</h1>
      <p className="card muted">Traces are the admin&apos;s.</p>
    </div>
  );
}
