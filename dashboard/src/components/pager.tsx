"use client";

import { describeError, formatError } from "../lib/errors.ts";
import type { LivePage, PageView } from "../lib/live-page.ts";

/**
 * Where a live page is (rows a to b of all that match), the way to newer and older pages, the new
 * items it does not show yet, and why a page could not be listed.
 */
export function Pager<Item, Filter>({
  page,
  view,
  noun,
  pageSize,
}: {
  page: LivePage<Item, Filter>;
  view: PageView<Item, Filter>;
  /** What the rows are, in the plural: "users". */
  noun: string;
  pageSize: number;
}) {
  // The first page may hold items created since it was listed, on top of a page.
  const from = view.rows.length === 0 ? 0 : view.index * pageSize + 1;
  const to = from === 0 ? 0 : from + view.rows.length - 1;
  return (
    <div className="pager" data-pager={noun}>
      {view.error && (
        <p className="outcome error" role="alert">
          Could not list the {noun}: {formatError(describeError(view.error))}.{" "}
          <button type="button" className="link-button" onClick={page.refresh}>
            Try again
          </button>
        </p>
      )}
      {view.unseen > 0 && (
        <button type="button" className="secondary small" onClick={page.refresh}>
          {view.unseen} new {view.unseen === 1 ? noun.replace(/s$/, "") : noun}: show the newest
        </button>
      )}
      <p className="muted" role="status" data-range={`${from}-${to}`}>
        {view.total === undefined
          ? ""
          : view.total === 0
            ? ""
            : `Showing ${from}–${to} of ${view.total} ${noun}.`}
      </p>
      <div className="pager-buttons">
        <button
          type="button"
          className="secondary small"
          disabled={view.index === 0 || view.loading}
          onClick={page.previous}
        >
          Newer
        </button>
        <span className="muted" data-page={view.index + 1}>
          Page {view.index + 1}
          {view.total ? ` of ${Math.max(1, Math.ceil(view.total / pageSize))}` : ""}
        </span>
        <button
          type="button"
          className="secondary small"
          disabled={!view.hasNext || view.loading}
          onClick={page.next}
        >
          Older
        </button>
      </div>
    </div>
  );
}
