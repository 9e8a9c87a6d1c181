"use client";

import { formatError } from "../lib/errors.ts";
import type { StreamState } from "../lib/resilient-stream.ts";
import { useNow } from "./shop-provider.tsx";

/** A small pill with a stream's state, as the header and the section titles show it. */
export function StreamBadge({
  name,
  state,
  showName = false,
}: {
  name: string;
  state: StreamState;
  showName?: boolean;
}) {
  return (
    <span
      className={`badge badge-${state.status}`}
      data-stream={name}
      data-status={state.status}
      title={state.error ? formatError(state.error) : undefined}
    >
      <span className="dot" aria-hidden="true" />
      <span className={showName ? "badge-name" : "visually-hidden"}>{name} </span>
      <span className="badge-status">{state.status}</span>
    </span>
  );
}

/**
 * What a section says while its stream is not live: loading at first; later, that the service
 * cannot be reached, why, and when the next attempt is, with a button to try at once.
 */
export function StreamNotice({
  service,
  url,
  state,
  hasData,
  onRetry,
}: {
  service: string;
  url: string;
  state: StreamState;
  hasData: boolean;
  onRetry: () => void;
}) {
  const waiting = state.status === "reconnecting" || state.status === "offline";
  const now = useNow(waiting);
  if (state.status === "live") return null;
  if (state.status === "connecting") {
    return (
      <p className="notice notice-info" role="status">
        Connecting to the {service} service…
      </p>
    );
  }
  const seconds = state.retryAt ? Math.max(0, Math.ceil((state.retryAt - now) / 1000)) : 0;
  return (
    <div className={`notice notice-${state.status}`} role="alert" data-notice={service}>
      <p>
        <strong>
          {state.status === "offline"
            ? `The ${service} service is offline.`
            : `Lost the connection to the ${service} service; reconnecting.`}
        </strong>{" "}
        {state.error ? `${formatError(state.error)}. ` : ""}
        {hasData ? "Showing the last data received. " : ""}
        {seconds > 0 ? `Next attempt in ${seconds} s.` : "Trying again now."}
      </p>
      <p className="notice-detail">
        Reaching it at <code>{url}</code>.{" "}
        <button type="button" className="link-button" onClick={onRetry}>
          Retry now
        </button>
      </p>
    </div>
  );
}
