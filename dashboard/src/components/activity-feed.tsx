"use client";

import type { ActivityEntry } from "../lib/live-collection.ts";

/** The latest changes a stream delivered, newest first: each change once, with its revision. */
export function ActivityFeed<Item>({
  title,
  entries,
  describe,
}: {
  title: string;
  entries: readonly ActivityEntry<Item>[];
  describe: (entry: ActivityEntry<Item>) => string;
}) {
  return (
    <section className="card activity" aria-label={title}>
      <h2>{title}</h2>
      {entries.length === 0 ? (
        <p className="empty">No changes since the page opened.</p>
      ) : (
        <ol>
          {entries.map((entry) => (
            <li key={`${entry.revision}:${entry.key}`} data-revision={String(entry.revision)}>
              <span className={`tag tag-${entry.kind}`}>{entry.kind}</span> {describe(entry)}{" "}
              <span className="muted">rev {String(entry.revision)}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
