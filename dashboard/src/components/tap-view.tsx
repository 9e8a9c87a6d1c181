"use client";

import { timestampDate } from "@bufbuild/protobuf/wkt";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Fragment, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import { createLiveTap, type TapFilters } from "../lib/live-tap.ts";
import { type ServiceName, serviceNames } from "../lib/service-urls.ts";
import { useIsAdmin, useShop } from "./shop-provider.tsx";
import { StreamBadge } from "./stream-status.tsx";

const codes = [
  "ok",
  "canceled",
  "invalid_argument",
  "not_found",
  "already_exists",
  "permission_denied",
  "unauthenticated",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unavailable",
  "deadline_exceeded",
  "internal",
  "unknown",
];

/** Who calls, as the services' statistics count callers: a service (by its token), or outside. */
const callers: readonly string[] = ["outside", ...serviceNames];

/**
 * The live tap (admins): every call the services answer, as it completes, from each service's
 * TapService; filtered on the services, paused and resumed here; each row opens to its messages,
 * which the services redacted by the contract before they left.
 */
export function TapView() {
  const shop = useShop();
  const admin = useIsAdmin();
  const tap = useMemo(() => createLiveTap(), []);
  const view = useSyncExternalStore(tap.subscribe, tap.getSnapshot, tap.getSnapshot);
  // The topology opens the tap on one service (?service=users), and an edge on one of its
  // callers (&caller=orders, or outside).
  const params = useSearchParams();
  const asked = params.get("service");
  const askedCaller = params.get("caller");
  const [server, setServer] = useState<ServiceName | "">(() =>
    serviceNames.includes(asked as ServiceName) ? (asked as ServiceName) : "",
  );
  const [caller, setCaller] = useState<string>(() =>
    askedCaller !== null && callers.includes(askedCaller) ? askedCaller : "",
  );
  const [method, setMethod] = useState("");
  const [code, setCode] = useState("");
  const [slowerThan, setSlowerThan] = useState("");
  const [open, setOpen] = useState<string>();
  const filters = useMemo<TapFilters>(
    () => ({
      service: "",
      method: method.trim(),
      codes: code === "" ? [] : [code],
      slowerThanMs: Math.max(0, Number.parseInt(slowerThan, 10) || 0),
      caller,
    }),
    [method, code, slowerThan, caller],
  );
  useEffect(() => {
    if (!admin) return;
    const servers = server === "" ? serviceNames : [server];
    const timer = setTimeout(
      () => tap.open(Object.fromEntries(servers.map((name) => [name, shop.tap[name]])), filters),
      250,
    );
    return () => clearTimeout(timer);
  }, [admin, tap, shop, server, filters]);
  useEffect(() => () => tap.close(), [tap]);

  if (!admin) {
    return (
      <div className="page">
        <h1>Tap</h1>
        <p className="card muted">The tap is the admin&apos;s.</p>
      </div>
    );
  }
  return (
    <div className="page">
      <div className="page-title">
        <h1>Tap</h1>
        {Object.entries(view.streams).map(([name, state]) => (
          <StreamBadge key={name} name={`tap ${name}`} state={state} showName />
        ))}
      </div>
      <section className="card" aria-labelledby="tap-title">
        <div className="card-title">
          <h2 id="tap-title">Calls as they complete</h2>
          <span className="muted" data-tap-dropped={view.dropped}>
            {view.dropped > 0
              ? `${view.dropped} dropped by the services (the page fell behind)`
              : ""}
          </span>
        </div>
        <div className="filters">
          <Choice
            id="tap-server"
            label="Service"
            any="All"
            options={serviceNames}
            value={server}
            onChange={(value) => setServer(value as ServiceName | "")}
          />
          <Choice
            id="tap-caller"
            label="Caller"
            any="Anyone"
            options={callers}
            value={caller}
            onChange={setCaller}
          />
          <div className="field inline">
            <label htmlFor="tap-method">Method</label>
            <input
              id="tap-method"
              value={method}
              placeholder="CreateOrder"
              onChange={(event) => setMethod(event.target.value)}
            />
          </div>
          <Choice
            id="tap-code"
            label="Code"
            any="Any"
            options={codes}
            value={code}
            onChange={setCode}
          />
          <div className="field inline">
            <label htmlFor="tap-slower">Slower than (ms)</label>
            <input
              id="tap-slower"
              inputMode="numeric"
              value={slowerThan}
              onChange={(event) => setSlowerThan(event.target.value)}
            />
          </div>
          <button
            type="button"
            className="secondary"
            onClick={view.paused ? tap.resume : tap.pause}
            aria-pressed={view.paused}
          >
            {view.paused ? `Resume (${view.held} waiting)` : "Pause"}
          </button>
        </div>
        {view.rows.length === 0 ? (
          <p className="empty">No calls yet. Calls show here as the services answer them.</p>
        ) : (
          <div className="table-scroll">
            <table className="tap-table">
              <caption className="visually-hidden">Calls, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Method</th>
                  <th scope="col" className="optional">
                    Protocol
                  </th>
                  <th scope="col" className="optional">
                    Caller
                  </th>
                  <th scope="col">Code</th>
                  <th scope="col" className="number">
                    ms
                  </th>
                  <th scope="col" className="number optional">
                    Bytes in / out
                  </th>
                  <th scope="col">Trace</th>
                </tr>
              </thead>
              <tbody>
                {view.rows.map(({ key, event }) => (
                  <Fragment key={key}>
                    <tr
                      data-tap-method={event.method}
                      data-tap-caller={event.caller}
                      data-code={event.code}
                      className="clickable"
                      onClick={() => setOpen(open === key ? undefined : key)}
                    >
                      <td className="muted">
                        {event.time ? timestampDate(event.time).toLocaleTimeString() : ""}
                      </td>
                      <td>
                        <button
                          type="button"
                          className="link-button"
                          aria-expanded={open === key}
                          aria-label={`${event.method} on ${event.server}: show its messages`}
                        >
                          {event.server} · {event.method.split("/")[1]}
                        </button>
                      </td>
                      <td className="optional muted">
                        {event.protocol}+{event.codec} · HTTP/{event.httpVersion}
                      </td>
                      <td className="optional">{event.caller}</td>
                      <td>
                        <span className={`tag ${event.code === "ok" ? "tag-ok" : "tag-warn"}`}>
                          {event.code}
                        </span>
                      </td>
                      <td className="number">{event.durationMs.toFixed(1)}</td>
                      <td className="number optional">
                        {String(event.requestBytes)} / {String(event.responseBytes)}
                      </td>
                      <td>
                        {event.traceId ? (
                          <Link href={`/traces/${event.traceId}`} title={event.traceId}>
                            {event.traceId.slice(0, 8)}
                          </Link>
                        ) : (
                          <span className="muted">—</span>
                        )}
                      </td>
                    </tr>
                    {open === key && (
                      <tr className="tap-payloads">
                        <td colSpan={8}>
                          {event.message && <p className="outcome error">{event.message}</p>}
                          <div className="tap-messages">
                            <Messages
                              title="Request"
                              values={event.requests}
                              count={event.requestMessages}
                            />
                            <Messages
                              title="Response"
                              values={event.responses}
                              count={event.responseMessages}
                            />
                          </div>
                        </td>
                      </tr>
                    )}
                  </Fragment>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

/** A filter that is one of `options`, or `any` (the empty value). */
function Choice(props: {
  id: string;
  label: string;
  any: string;
  options: readonly string[];
  value: string;
  onChange: (value: string) => void;
}) {
  return (
    <div className="field inline">
      <label htmlFor={props.id}>{props.label}</label>
      <select
        id={props.id}
        value={props.value}
        onChange={(event) => props.onChange(event.target.value)}
      >
        <option value="">{props.any}</option>
        {props.options.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
    </div>
  );
}

/**
 * A call's messages on one side: the tap keeps a single message, and the first 10 of a stream
 * (`count` says how many passed; 0 for a stream that began before the tap asked for payloads).
 */
function Messages({
  title,
  values,
  count,
}: {
  title: string;
  values: readonly string[];
  count: bigint;
}) {
  const heading =
    count > BigInt(values.length)
      ? `${title}: the first ${values.length} of ${count} messages`
      : count > 1n
        ? `${title}: ${count} messages`
        : title;
  return (
    <div>
      <h3 className="small-title">{heading}</h3>
      {values.length === 0 ? (
        <p className="muted">
          {count === 0n
            ? "None kept: no message, or a stream that began before this tap was open."
            : "None kept."}
        </p>
      ) : (
        values.map((value, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: the messages of one call, in order
          <pre key={i} data-tap-payload={title.toLowerCase()}>
            {pretty(value)}
          </pre>
        ))
      )}
    </div>
  );
}

/** A message's JSON text, indented. */
function pretty(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}
