"use client";

/** Shown instead of a page that failed to render, with a way to try again. */
export default function PageError({ error, reset }: { error: Error; reset: () => void }) {
  return (
    <div className="page">
      <div className="card notice notice-offline" role="alert">
        <h1>This page could not be shown</h1>
        <p>{error.message || "Something went wrong while rendering it."}</p>
        <button type="button" onClick={reset}>
          Try again
        </button>
      </div>
    </div>
  );
}
