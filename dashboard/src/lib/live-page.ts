import { ConnectError } from "@connectrpc/connect";
import { createHighlights } from "./highlights.ts";
import type { ActivityEntry, CollectionChange, LiveCollection } from "./live-collection.ts";

/** One page of a filtered List call, with how many items match the filter in all. */
export interface FilteredPage<Item> {
  items: Item[];
  nextPageToken: string;
  revision: bigint;
  total: number;
}

/** A collection listed one filtered page at a time (ListUsers, ListOrders), newest first. */
export interface PageSource<Item, Filter> {
  key(item: Item): string;
  version(item: Item): bigint;
  list(
    filter: Filter,
    pageToken: string,
    pageSize: number,
    signal: AbortSignal,
  ): Promise<FilteredPage<Item>>;
  /** Whether an item belongs to the filter's pages, as the service decides it. */
  matches(filter: Filter, item: Item): boolean;
}

/** What the page renders of a live page. */
export interface PageView<Item, Filter> {
  filter: Filter;
  /** 0 for the newest page. */
  index: number;
  /** The items shown, newest first: the listed page, and on the first page those created since. */
  rows: readonly Item[];
  /** How many items match the filter, counting the changes since the page was listed. */
  total: number | undefined;
  /** Whether there is an older page. */
  hasNext: boolean;
  /** Items created since the page was listed that it does not show (past the first page, say). */
  unseen: number;
  loading: boolean;
  error: ConnectError | undefined;
  /** Keys of the rows that changed in the last moments. */
  highlighted: ReadonlySet<string>;
}

/** One page of a collection too large to hold, kept live by the collection's changes. */
export interface LivePage<Item, Filter> {
  subscribe(listener: () => void): () => void;
  getSnapshot(): PageView<Item, Filter>;
  /** Shows the first page of `filter`. */
  show(filter: Filter): void;
  next(): void;
  previous(): void;
  /** Lists the current page again (the first, when it has unseen items). */
  refresh(): void;
  start(): void;
  stop(): void;
}

export interface LivePageOptions {
  pageSize?: number;
  highlightMs?: number;
}

/**
 * One page of `source` at a time, listed on the server with its filter and page token, and kept
 * live by `changes` (a collection that holds no item, `keep: "changes"`): a change of a row shown
 * replaces it, a deletion removes it, and a created item that matches the filter goes on top of
 * the first page (up to one more page of them) or is counted as unseen. Nothing but the page is
 * held, so a collection of any size costs one page.
 *
 * The page follows the changes from before it lists, and applies only those past the revision its
 * list reflects: a change is shown once whether the list or the watch brought it first.
 */
export function createLivePage<Item, Filter>(
  source: PageSource<Item, Filter>,
  changes: LiveCollection<Item>,
  initial: Filter,
  options: LivePageOptions = {},
): LivePage<Item, Filter> {
  const pageSize = options.pageSize ?? 50;
  const highlightMs = options.highlightMs ?? 2_500;
  const listeners = new Set<() => void>();
  const highlights = createHighlights(highlightMs, () => emit());

  let filter = initial;
  /** The token of each page up to the one asked for: tokens[0] is "", the first page. */
  let tokens = [""];
  /** The index of the page the rows are from (the one asked for, once listed). */
  let index = 0;
  let rows: Item[] = [];
  let revision: bigint | undefined;
  let total: number | undefined;
  let nextPageToken = "";
  let unseen = 0;
  let loading = true;
  let error: ConnectError | undefined;
  /** Changes that came while the page was being listed: applied after it, past its revision. */
  let pending: ActivityEntry<Item>[] | undefined;
  let listing: AbortController | undefined;
  let unsubscribe: (() => void) | undefined;
  let view = render();

  function render(): PageView<Item, Filter> {
    return {
      filter,
      index,
      rows,
      total,
      hasNext: nextPageToken !== "",
      unseen,
      loading,
      error,
      highlighted: highlights.current(),
    };
  }

  function emit(): void {
    view = render();
    highlights.schedule();
    for (const listener of listeners) listener();
  }

  async function load(): Promise<void> {
    listing?.abort();
    const controller = new AbortController();
    listing = controller;
    loading = true;
    pending = [];
    emit();
    try {
      const page = await source.list(filter, tokens.at(-1) ?? "", pageSize, controller.signal);
      if (controller.signal.aborted) return;
      rows = page.items;
      index = tokens.length - 1;
      revision = page.revision;
      total = page.total;
      nextPageToken = page.nextPageToken;
      unseen = 0;
      error = undefined;
      const caught = pending;
      pending = undefined;
      loading = false;
      apply(caught);
    } catch (cause) {
      if (controller.signal.aborted) return;
      pending = undefined;
      loading = false;
      error = ConnectError.from(cause);
      emit();
    }
  }

  function onChange(change: CollectionChange<Item>): void {
    if (change.kind === "lost") {
      // The changes in between are gone: what the page shows is read again.
      void load();
      return;
    }
    if (pending) pending.push(...change.entries);
    else apply(change.entries);
  }

  function apply(entries: readonly ActivityEntry<Item>[]): void {
    const firstPage = index === 0;
    let next = rows;
    for (const entry of entries) {
      // The list reflects every change up to its revision.
      if (revision === undefined || entry.revision <= revision) continue;
      const at = next.findIndex((row) => source.key(row) === entry.key);
      if (at >= 0) {
        const shown = next[at] as Item;
        if (entry.kind === "deleted") {
          next = next.toSpliced(at, 1);
          if (total !== undefined) total -= 1;
        } else if (source.version(entry.item) > source.version(shown)) {
          next = next.with(at, entry.item);
          highlights.add(entry.key);
        }
        continue;
      }
      if (entry.kind !== "created" || !source.matches(filter, entry.item)) continue;
      if (total !== undefined) total += 1;
      // The first page takes new items on top, up to a page of them; the rest are counted.
      if (firstPage && unseen === 0 && next.length < 2 * pageSize) {
        next = [entry.item, ...next];
        highlights.add(entry.key);
      } else {
        unseen += 1;
      }
    }
    rows = next;
    emit();
  }

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => view,
    show(next) {
      filter = next;
      tokens = [""];
      void load();
    },
    next() {
      if (nextPageToken === "" || loading) return;
      tokens = [...tokens, nextPageToken];
      void load();
    },
    previous() {
      if (tokens.length === 1 || loading) return;
      tokens = tokens.slice(0, -1);
      void load();
    },
    refresh() {
      if (unseen > 0) tokens = [""];
      void load();
    },
    start() {
      if (unsubscribe) return;
      unsubscribe = changes.subscribeChanges(onChange);
      void load();
    },
    stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      listing?.abort();
      highlights.stop();
    },
  };
}
