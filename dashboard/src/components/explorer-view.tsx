"use client";

import type { DescMethod, DescService, JsonObject, JsonValue, Registry } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { useSearchParams } from "next/navigation";
import { type FormEvent, useEffect, useMemo, useRef, useState } from "react";
import { createBearerInterceptor } from "../lib/bearer.ts";
import { describeError } from "../lib/errors.ts";
import {
  buildCatalog,
  type CatalogTarget,
  type CommandKind,
  commandFor,
  type DecodedDetail,
  decodeDetail,
  type ExplorerTarget,
  linkQuery,
  messageJson,
  parseRequest,
  requestTemplate,
  type SharedCall,
  sharedCallOf,
} from "../lib/explorer.ts";
import type { RelayEvent } from "../lib/relay.ts";
import { RequestForm } from "./request-form.tsx";
import { useIsAdmin, useSession } from "./shop-provider.tsx";

/** Messages of a stream kept in view; older ones are dropped from it (and counted). */
const shownMessages = 200;
const historyKey = "shop-dashboard.explorer-history";
const historyLimit = 20;
const commandKinds: CommandKind[] = ["buf curl", "grpcurl", "curl"];

type Protocol = "connect" | "grpc-web";

/** A call in progress or done, as the page shows it. */
interface CallView {
  method: string;
  running: boolean;
  startedAt: number;
  durationMs: number | undefined;
  header: [string, string][];
  trailer: [string, string][];
  /** The latest messages, each numbered from 0 and with the milliseconds from the call's start. */
  messages: { index: number; atMs: number; json: string }[];
  dropped: number;
  /** Messages sent on a relayed stream. */
  sent: number;
  error: { code: string; message: string; details: DecodedDetail[] } | undefined;
}

/**
 * The API explorer (admins): every service the dashboard knows, found through server reflection by
 * the dashboard's server, with its methods; a request as JSON, started from the input's template
 * and checked against the contract's rules before it is sent; unary and server-streaming calls
 * straight from the browser with the signed-in person's token, over Connect or gRPC-web; the
 * answer's messages, headers, trailers, code and decoded error details; a history, a link that
 * reproduces the call, and the same call as a `buf curl`, `grpcurl` or `curl` command.
 */
export function ExplorerView() {
  const { session } = useSession();
  const admin = useIsAdmin();
  const query = useSearchParams();
  const [catalog, setCatalog] = useState<CatalogTarget[]>();
  const [loadError, setLoadError] = useState<string>();
  const [selected, setSelected] = useState<{ url: string; method: string }>();
  const [body, setBody] = useState("");
  const [problem, setProblem] = useState<string>();
  const [protocol, setProtocol] = useState<Protocol>("connect");
  const [deadlineMs, setDeadlineMs] = useState("");
  const [extraHeaders, setExtraHeaders] = useState("");
  const [checkRules, setCheckRules] = useState(true);
  const [call, setCall] = useState<CallView>();
  const [history, setHistory] = useState<SharedCall[]>([]);
  const [copied, setCopied] = useState<{ kind: CommandKind; text: string }>();
  const abort = useRef<AbortController | undefined>(undefined);
  /** The relay of the client- or bidi-streaming call in progress. */
  const relay = useRef<{ id: string } | undefined>(undefined);

  useEffect(() => {
    if (!admin) return;
    let cancelled = false;
    (async () => {
      const token = await session.token().catch(() => undefined);
      const response = await fetch("/api/explorer", {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        cache: "no-store",
      });
      if (!response.ok) throw new Error(`the dashboard answered ${response.status}`);
      const { targets } = (await response.json()) as { targets: ExplorerTarget[] };
      if (!cancelled) setCatalog(buildCatalog(targets));
    })().catch((error: unknown) => {
      if (!cancelled) setLoadError(error instanceof Error ? error.message : String(error));
    });
    setHistory(readHistory());
    return () => {
      cancelled = true;
    };
  }, [admin, session]);

  // A link names a call: select it once the catalog is known.
  useEffect(() => {
    const shared = sharedCallOf(query);
    if (!catalog || !shared) return;
    setSelected({ url: shared.url, method: shared.method });
    setBody(shared.body);
  }, [catalog, query]);

  const found = useMemo(() => findMethod(catalog, selected), [catalog, selected]);
  // The form shows the JSON's value whenever the JSON reads as an object.
  const formValue = useMemo(() => objectOf(body), [body]);

  function choose(target: CatalogTarget, method: DescMethod) {
    // A call still running belongs to the method left: it ends here.
    const open = relay.current;
    relay.current = undefined;
    if (open) void relayCommand(open.id, { cancel: true });
    abort.current?.abort(new Error("another method was chosen"));
    abort.current = undefined;
    setSelected({ url: target.url, method: fullName(method) });
    setBody(target.registry ? requestTemplate(method, target.registry) : "{}");
    setProblem(undefined);
    setCall(undefined);
  }

  /**
   * A new call of `method` in view (remembered in the history, the previous call cancelled): its
   * state, how to add to it, and its signal.
   */
  function startCall(target: CatalogTarget, method: DescMethod) {
    setProblem(undefined);
    remember({ url: target.url, method: fullName(method), body });
    const controller = new AbortController();
    abort.current?.abort();
    abort.current = controller;
    const startedAt = performance.now();
    const state: CallView = {
      method: fullName(method),
      running: true,
      startedAt,
      durationMs: undefined,
      header: [],
      trailer: [],
      messages: [],
      dropped: 0,
      sent: 0,
      error: undefined,
    };
    const update = (next: Partial<CallView>) => {
      Object.assign(state, next);
      // A call left for another one (or another method) no longer shows.
      if (abort.current === controller) setCall({ ...state, messages: [...state.messages] });
    };
    update({});
    const received = (json: JsonValue, atMs = performance.now() - startedAt) => {
      state.messages.push({
        index: state.dropped + state.messages.length,
        atMs,
        json: JSON.stringify(json, null, 2),
      });
      if (state.messages.length > shownMessages) {
        state.messages.shift();
        state.dropped++;
      }
      update({});
    };
    const ended = (error: CallView["error"]) =>
      update({ running: false, durationMs: performance.now() - startedAt, error });
    return { state, update, received, ended, signal: controller.signal };
  }

  async function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!found) return;
    const { target, method, registry } = found;
    if (requestStreaming(method)) {
      if (relay.current) await sendOnRelay();
      else await openRelayCall();
      return;
    }
    const parsed = parseRequest(method, body, registry, { checkRules });
    if ("problem" in parsed) {
      setProblem(parsed.problem);
      return;
    }
    const view = startCall(target, method);
    const options = {
      signal: view.signal,
      timeoutMs: Number(deadlineMs) > 0 ? Number(deadlineMs) : undefined,
      headers: parseHeaders(extraHeaders),
      onHeader: (headers: Headers) => {
        view.state.header = [...headers.entries()];
      },
      onTrailer: (trailers: Headers) => {
        view.state.trailer = [...trailers.entries()];
      },
    };
    try {
      const transport = transportFor(protocol, target.url, registry, session);
      // biome-ignore lint/suspicious/noExplicitAny: a client of a service known only at runtime
      const client = createClient(method.parent, transport) as Record<string, any>;
      const invoke = client[method.localName];
      if (method.methodKind === "unary") {
        view.received(messageJson(method, await invoke(parsed.message, options), registry));
      } else {
        for await (const message of invoke(parsed.message, options)) {
          view.received(messageJson(method, message, registry));
        }
      }
      view.ended(undefined);
    } catch (error) {
      view.ended(describeCallError(error, registry));
    }
  }

  /**
   * Opens a client- or bidi-streaming call through the dashboard's relay: its events arrive as
   * lines of JSON on one fetch; messages, the half-close and the cancel go by others.
   */
  async function openRelayCall() {
    if (!found) return;
    const { target, method, registry } = found;
    const view = startCall(target, method);
    try {
      const token = await session.token();
      const response = await fetch("/api/explorer/relay", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({
          url: target.url,
          method: fullName(method),
          headers: parseHeaders(extraHeaders),
          timeoutMs: Number(deadlineMs) > 0 ? Number(deadlineMs) : undefined,
        }),
        signal: view.signal,
      });
      if (!response.ok || !response.body) {
        const refusal = (await response.json().catch(() => ({}))) as {
          code?: string;
          error?: string;
        };
        view.ended({
          code: refusal.code ?? "unavailable",
          message: refusal.error ?? `the relay answered ${response.status}`,
          details: [],
        });
        return;
      }
      let buffered = "";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
          const event = JSON.parse(buffered.slice(0, newline)) as RelayEvent;
          buffered = buffered.slice(newline + 1);
          if (event.kind === "open") {
            relay.current = { id: event.id };
            // The page's message goes out as the stream's first.
            await sendOnRelay(view);
          } else if (event.kind === "header") view.update({ header: event.fields });
          else if (event.kind === "message") view.received(event.json, event.atMs);
          else {
            relay.current = undefined;
            view.update({ trailer: event.trailer });
            view.ended(
              event.code === "ok"
                ? undefined
                : {
                    code: event.code,
                    message: event.message,
                    details: event.details,
                  },
            );
          }
        }
      }
    } catch (error) {
      relay.current = undefined;
      if (view.signal.aborted)
        view.ended({ code: "canceled", message: "cancelled from the page", details: [] });
      else view.ended(describeCallError(error, registry));
    }
  }

  /** Sends the request in the form as the relay's next message. */
  async function sendOnRelay(view?: ReturnType<typeof startCall>) {
    const open = relay.current;
    if (!found || !open) return;
    const parsed = parseRequest(found.method, body, found.registry, { checkRules });
    if ("problem" in parsed) {
      setProblem(parsed.problem);
      return;
    }
    setProblem(undefined);
    const answer = await relayCommand(open.id, {
      send: messageJson(found.method, parsed.message, found.registry, "input"),
    });
    if (answer) setProblem(answer);
    else if (view) view.update({ sent: view.state.sent + 1 });
    else setCall((current) => current && { ...current, sent: current.sent + 1 });
  }

  /** Sends a command to the open relay; what went wrong, if anything. */
  async function relayCommand(id: string, command: object): Promise<string | undefined> {
    const response = await fetch(`/api/explorer/relay/${id}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(command),
    });
    if (response.ok) return undefined;
    const refusal = (await response.json().catch(() => ({}))) as { error?: string };
    return refusal.error ?? `the relay answered ${response.status}`;
  }

  if (!admin) {
    return (
      <div className="page">
        <h1>Explorer</h1>
        <p className="card muted">The explorer is the admin&apos;s.</p>
      </div>
    );
  }
  const streamingRequests =
    found !== undefined &&
    (found.method.methodKind === "client_streaming" ||
      found.method.methodKind === "bidi_streaming");
  const link = found
    ? `/explorer?${linkQuery({ url: found.target.url, method: fullName(found.method), body })}`
    : undefined;
  return (
    <div className="page explorer">
      <div className="page-title">
        <h1>Explorer</h1>
      </div>
      <div className="layout-side">
        <nav className="card" aria-label="Services and methods">
          {loadError && <p role="alert">Could not ask the services what they serve: {loadError}</p>}
          {!catalog && !loadError && <p className="empty">Asking the services…</p>}
          {catalog?.map((target) => (
            <section key={target.url} data-target={target.url}>
              <h2 className="explorer-target">
                {target.name} <code className="muted small-text">{target.url}</code>
              </h2>
              {target.error && <p className="problem">Not reachable: {target.error}</p>}
              {target.services.map((service) => (
                <ServiceMethods
                  key={service.typeName}
                  service={service}
                  selected={selected?.url === target.url ? selected.method : undefined}
                  onChoose={(method) => choose(target, method)}
                />
              ))}
            </section>
          ))}
        </nav>
        <div className="stack">
          {found ? (
            <form className="card form" onSubmit={send} noValidate aria-labelledby="call-title">
              <h2 id="call-title">
                {fullName(found.method)} <span className="muted">({kindLabel(found.method)})</span>
              </h2>
              <p className="muted small-text">
                {found.method.input.typeName} → {found.method.output.typeName}
              </p>
              <div className="explorer-request">
                <section aria-label="Request form">
                  {formValue ? (
                    <RequestForm
                      message={found.method.input}
                      value={formValue}
                      onChange={(next) => setBody(JSON.stringify(next, null, 2))}
                    />
                  ) : (
                    <p className="muted">The form follows the JSON once it reads as an object.</p>
                  )}
                </section>
                <div className="field">
                  <label htmlFor="explorer-body">Request (JSON)</label>
                  <textarea
                    id="explorer-body"
                    rows={12}
                    spellCheck={false}
                    value={body}
                    onChange={(event) => setBody(event.target.value)}
                    aria-invalid={problem ? true : undefined}
                    aria-describedby={problem ? "explorer-problem" : undefined}
                  />
                </div>
              </div>
              {problem && (
                <p className="problem" id="explorer-problem" role="alert">
                  Not sent: {problem}
                </p>
              )}
              <div className="explorer-options">
                <div className="field">
                  <label htmlFor="explorer-protocol">Protocol</label>
                  <select
                    id="explorer-protocol"
                    value={protocol}
                    onChange={(event) => setProtocol(event.target.value as Protocol)}
                  >
                    <option value="connect">Connect</option>
                    <option value="grpc-web">gRPC-web</option>
                  </select>
                </div>
                <div className="field">
                  <label htmlFor="explorer-deadline">Deadline (ms)</label>
                  <input
                    id="explorer-deadline"
                    inputMode="numeric"
                    value={deadlineMs}
                    onChange={(event) => setDeadlineMs(event.target.value)}
                  />
                </div>
              </div>
              <div className="field">
                <label htmlFor="explorer-headers">Extra headers (one "name: value" a line)</label>
                <textarea
                  id="explorer-headers"
                  rows={2}
                  spellCheck={false}
                  value={extraHeaders}
                  onChange={(event) => setExtraHeaders(event.target.value)}
                />
              </div>
              <label className="checkbox">
                <input
                  type="checkbox"
                  checked={checkRules}
                  onChange={(event) => setCheckRules(event.target.checked)}
                />{" "}
                Check the contract&apos;s rules before sending (off: see how the service refuses)
              </label>
              {streamingRequests ? (
                <div className="actions">
                  <button type="submit" disabled={call?.running && !relay.current}>
                    {relay.current ? "Send message" : "Open stream and send"}
                  </button>
                  {relay.current && (
                    <>
                      <button
                        type="button"
                        onClick={() => {
                          const open = relay.current;
                          if (open) void relayCommand(open.id, { close: true }).then(setProblem);
                        }}
                      >
                        Half-close
                      </button>
                      <button
                        type="button"
                        onClick={() => {
                          const open = relay.current;
                          if (open) void relayCommand(open.id, { cancel: true }).then(setProblem);
                        }}
                      >
                        Cancel
                      </button>
                    </>
                  )}
                  {call?.running && relay.current && (
                    <span className="muted" data-sent={call.sent}>
                      {call.sent} sent
                    </span>
                  )}
                </div>
              ) : (
                <div className="actions">
                  <button type="submit" disabled={call?.running}>
                    Send
                  </button>
                  {call?.running && (
                    <button
                      type="button"
                      onClick={() => abort.current?.abort(new Error("cancelled from the page"))}
                    >
                      Cancel
                    </button>
                  )}
                </div>
              )}
              <div className="actions">
                {commandKinds.map((kind) => (
                  <button
                    key={kind}
                    type="button"
                    onClick={() => {
                      const text = commandOrNote(kind, found.target.url, found.method, body);
                      setCopied({ kind, text });
                      void navigator.clipboard?.writeText(text).catch(() => {});
                    }}
                  >
                    Copy as {kind}
                  </button>
                ))}
                {link && (
                  <a href={link} data-link="call">
                    Link to this call
                  </a>
                )}
              </div>
              {copied && (
                <pre className="explorer-command" data-command={copied.kind}>
                  {copied.text}
                </pre>
              )}
            </form>
          ) : (
            <p className="card muted">Choose a method.</p>
          )}
          {call && <CallResult call={call} />}
          {history.length > 0 && (
            <section className="card" aria-labelledby="history-title">
              <h2 id="history-title">History</h2>
              <ul className="explorer-history">
                {history.map((entry) => (
                  <li key={`${entry.url} ${entry.method} ${entry.body}`}>
                    <a href={`/explorer?${linkQuery(entry)}`}>
                      {entry.method} <span className="muted">{entry.url}</span>
                    </a>
                  </li>
                ))}
              </ul>
            </section>
          )}
        </div>
      </div>
    </div>
  );

  function remember(entry: SharedCall) {
    const next = [entry, ...readHistory().filter((other) => !sameCall(other, entry))].slice(
      0,
      historyLimit,
    );
    try {
      localStorage.setItem(historyKey, JSON.stringify(next));
    } catch {
      // Storage full or off: the history lasts as long as the page.
    }
    setHistory(next);
  }
}

function ServiceMethods({
  service,
  selected,
  onChoose,
}: {
  service: DescService;
  selected: string | undefined;
  onChoose: (method: DescMethod) => void;
}) {
  return (
    <div className="explorer-service" data-service={service.typeName}>
      <h3>{service.typeName}</h3>
      <ul>
        {service.methods.map((method) => (
          <li key={method.name}>
            <button
              type="button"
              className="link-button"
              aria-pressed={selected === fullName(method)}
              data-method={fullName(method)}
              onClick={() => onChoose(method)}
            >
              {method.name} <span className="muted small-text">{kindLabel(method)}</span>
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function CallResult({ call }: { call: CallView }) {
  return (
    <section className="card" aria-labelledby="answer-title" data-call={call.method}>
      <h2 id="answer-title">Answer</h2>
      <p data-outcome={call.running ? "running" : call.error ? call.error.code : "ok"}>
        {call.running
          ? "Running…"
          : call.error
            ? `${call.error.code}: ${call.error.message}`
            : "ok"}
        {call.durationMs !== undefined && (
          <span className="muted"> · {call.durationMs.toFixed(0)} ms</span>
        )}
      </p>
      {call.error?.details.map((detail) => (
        <div key={detail.type} data-detail={detail.type}>
          <h3>{detail.type}</h3>
          <pre>
            {detail.json === null
              ? "(a type the service did not describe)"
              : JSON.stringify(detail.json, null, 2)}
          </pre>
        </div>
      ))}
      {call.dropped > 0 && (
        <p className="muted">
          {call.dropped} earlier messages dropped from view (the latest {shownMessages} are shown)
        </p>
      )}
      <ol className="explorer-messages">
        {call.messages.map((message) => (
          <li key={message.index} data-message={message.index}>
            <span className="muted small-text">+{message.atMs.toFixed(0)} ms</span>
            <pre>{message.json}</pre>
          </li>
        ))}
      </ol>
      <Fields title="Headers" fields={call.header} />
      <Fields title="Trailers" fields={call.trailer} />
    </section>
  );
}

function Fields({ title, fields }: { title: string; fields: [string, string][] }) {
  if (fields.length === 0) return null;
  return (
    <details>
      <summary>{title}</summary>
      <dl className="explorer-fields">
        {fields.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
    </details>
  );
}

function objectOf(text: string): JsonObject | undefined {
  try {
    const value = JSON.parse(text === "" ? "{}" : text) as JsonValue;
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function requestStreaming(method: DescMethod): boolean {
  return method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
}

function fullName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

function kindLabel(method: DescMethod): string {
  return method.methodKind.replace("_", " ");
}

function findMethod(
  catalog: CatalogTarget[] | undefined,
  selected: { url: string; method: string } | undefined,
): { target: CatalogTarget; method: DescMethod; registry: Registry } | undefined {
  if (!catalog || !selected) return undefined;
  const target = catalog.find((candidate) => candidate.url === selected.url);
  if (!target?.registry) return undefined;
  for (const service of target.services) {
    const method = service.methods.find((candidate) => fullName(candidate) === selected.method);
    if (method) return { target, method, registry: target.registry };
  }
  return undefined;
}

function transportFor(
  protocol: Protocol,
  baseUrl: string,
  registry: Registry,
  session: Parameters<typeof createBearerInterceptor>[0],
): Transport {
  const options = {
    baseUrl,
    interceptors: [createBearerInterceptor(session)],
    jsonOptions: { registry },
  };
  return protocol === "grpc-web"
    ? createGrpcWebTransport(options)
    : createConnectTransport(options);
}

/** "name: value" lines as headers; lines without a colon are left out. */
function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** The error of a call: its code, its words, and each detail decoded by its type. */
function describeCallError(error: unknown, registry: Registry): CallView["error"] {
  const { code, message } = describeError(error);
  const details = ConnectError.from(error).details.map((detail) => decodeDetail(detail, registry));
  return { code, message, details };
}

function commandOrNote(kind: CommandKind, url: string, method: DescMethod, body: string): string {
  try {
    return commandFor(kind, url, method, body) ?? `${kind} speaks Connect's unary protocol only`;
  } catch (error) {
    return `Not JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function readHistory(): SharedCall[] {
  try {
    const value = JSON.parse(localStorage.getItem(historyKey) ?? "[]") as unknown;
    return Array.isArray(value)
      ? value.filter(
          (entry): entry is SharedCall =>
            typeof entry?.url === "string" &&
            typeof entry?.method === "string" &&
            typeof entry?.body === "string",
        )
      : [];
  } catch {
    return [];
  }
}

function sameCall(a: SharedCall, b: SharedCall): boolean {
  return a.url === b.url && a.method === b.method && a.body === b.body;
}
