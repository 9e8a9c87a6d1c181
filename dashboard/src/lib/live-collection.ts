import { Code, ConnectError } from "@connectrpc/connect";
import { createHighlights } from "./highlights.ts";
import {
  connectingState,
  type ResilientStream,
  type ResilientStreamOptions,
  type StreamState,
  startResilientStream,
} from "./resilient-stream.ts";

/** The numbers of the EventType enums that the three services' watches share. */
export const EventKind = { snapshot: 1, created: 2, updated: 3, deleted: 4 } as const;

/** One event of a watch, whichever service sent it. */
export interface SourceEvent<Item> {
  type: number;
  item: Item | undefined;
  revision: bigint;
}

/** One response of a watch: events (none for a heartbeat) and the revision it brings us up to. */
export interface SourceBatch<Item> {
  events: SourceEvent<Item>[];
  revision: bigint;
}

/** One page of a List call. */
export interface SourcePage<Item> {
  items: Item[];
  nextPageToken: string;
  revision: bigint;
}

/** A watchable, listable collection of one service, such as the users of UserService. */
export interface CollectionSource<Item> {
  key(item: Item): string;
  /** Grows with every change of an item; tells a changed item from an unchanged one. */
  version(item: Item): bigint;
  watch(startRevision: bigint, signal: AbortSignal): AsyncIterable<SourceBatch<Item>>;
  list(pageToken: string, signal: AbortSignal): Promise<SourcePage<Item>>;
}

/**
 * Every page of `source`'s list, each with the first page's revision: later pages may already
 * reflect later changes, and replaying those from the first page's revision is harmless, where
 * starting after them would lose some.
 */
export async function* listPages<Item>(
  source: CollectionSource<Item>,
  signal: AbortSignal,
): AsyncGenerator<{ items: Item[]; revision: bigint }> {
  let first: bigint | undefined;
  let pageToken = "";
  do {
    const page = await source.list(pageToken, signal);
    first ??= page.revision;
    yield { items: page.items, revision: first };
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
}

/** A change as the activity feed lists it. */
export interface ActivityEntry<Item> {
  kind: "created" | "updated" | "deleted";
  key: string;
  item: Item;
  revision: bigint;
  /** When the browser received it (epoch milliseconds). */
  at: number;
}

/** What the page renders of a live collection. */
export interface CollectionView<Item> extends StreamState {
  /** False until the current state has first arrived. */
  loaded: boolean;
  items: ReadonlyMap<string, Item>;
  /** The revision the items reflect. */
  revision: bigint | undefined;
  /** Keys of the items that changed in the last moments. */
  highlighted: ReadonlySet<string>;
  /** The latest changes, newest first. */
  activity: readonly ActivityEntry<Item>[];
}

/**
 * What a collection tells the views built on its changes (live-page.ts): the changes it applied,
 * in revision order; or that it lost track (the service no longer had its revision), so that
 * whatever the views show is to be read again.
 */
export type CollectionChange<Item> =
  | { kind: "changes"; entries: readonly ActivityEntry<Item>[] }
  | { kind: "lost" };

/** A collection kept up to date by a watch, in the shape `useSyncExternalStore` wants. */
export interface LiveCollection<Item> {
  subscribe(listener: () => void): () => void;
  getSnapshot(): CollectionView<Item>;
  /** Every change from now on, as it is applied. */
  subscribeChanges(listener: (change: CollectionChange<Item>) => void): () => void;
  start(): void;
  stop(): void;
  retryNow(): void;
}

/** Tuning of a live collection; the defaults suit the page, tests shorten them. */
export interface LiveCollectionOptions {
  highlightMs?: number;
  activityLimit?: number;
  stream?: Pick<ResilientStreamOptions, "idleTimeoutMs" | "offlineAfter" | "backoff">;
  /**
   * "all" (the default) keeps every item: the watch starts from revision 0, with the whole
   * collection. "changes" keeps none: the watch starts from the current revision (`head`), and
   * the collection only passes on its changes (activity, highlights, `subscribeChanges`), for
   * collections too large to hold in a page, whose views list one page of them (live-page.ts).
   */
  keep?: "all" | "changes";
  /** The current revision of the collection; needed by `keep: "changes"`. */
  head?: (signal: AbortSignal) => Promise<bigint>;
}

/**
 * Mirrors a service's collection: watches from revision 0 (the current state, then changes), and
 * after a drop resumes from the last revision it saw, so that every change arrives exactly once.
 * When the service no longer has that revision (`out_of_range`), or the first snapshot broke off
 * half way, it lists the collection again and watches on from the list's revision. With
 * `keep: "changes"` it holds no item: see LiveCollectionOptions.
 */
export function createLiveCollection<Item>(
  source: CollectionSource<Item>,
  options: LiveCollectionOptions = {},
): LiveCollection<Item> {
  const highlightMs = options.highlightMs ?? 2_500;
  const activityLimit = options.activityLimit ?? 50;
  const changesOnly = options.keep === "changes";
  const head = options.head;
  if (changesOnly && !head) throw new Error('keep: "changes" needs head');
  const listeners = new Set<() => void>();
  const changeListeners = new Set<(change: CollectionChange<Item>) => void>();

  let items = new Map<string, Item>();
  let revision: bigint | undefined;
  let snapshotComplete = true;
  let mustResync = false;
  // Whether snapshot events replace state the page already shows (true when re-watching from 0).
  let snapshotReplaces = false;
  let activity: ActivityEntry<Item>[] = [];
  const highlights = createHighlights(highlightMs, () => emit());
  let stream: ResilientStream | undefined;
  let streamState: StreamState = connectingState;
  let view = render();

  function render(): CollectionView<Item> {
    return {
      ...streamState,
      loaded: revision !== undefined,
      items,
      revision,
      highlighted: highlights.current(),
      activity,
    };
  }

  function emit(): void {
    view = render();
    highlights.schedule();
    for (const listener of listeners) listener();
  }

  function apply(batch: SourceBatch<Item>): void {
    const next = changesOnly ? items : new Map(items);
    const added: ActivityEntry<Item>[] = [];
    let sawSnapshot = false;
    for (const event of batch.events) {
      if (!event.item) continue;
      const key = source.key(event.item);
      if (event.type === EventKind.snapshot) {
        sawSnapshot = true;
        // A collection of changes holds no item (it only sees a snapshot of an empty log).
        if (changesOnly) continue;
        const before = next.get(key);
        next.set(key, event.item);
        // A snapshot that replaces what the page shows (a re-watch from 0) reports what differs.
        if (
          snapshotReplaces &&
          (!before || source.version(before) !== source.version(event.item))
        ) {
          highlights.add(key);
          const kind = before ? "updated" : "created";
          added.push({ kind, key, item: event.item, revision: event.revision, at: Date.now() });
        }
        continue;
      }
      // A change at or below the revision we have is one we already applied.
      if (revision !== undefined && event.revision <= revision) continue;
      const kind =
        event.type === EventKind.deleted
          ? "deleted"
          : event.type === EventKind.created
            ? "created"
            : "updated";
      // After a list, the watch replays changes the list may already show: skip those.
      const before = next.get(key);
      if (
        !changesOnly &&
        (kind === "deleted"
          ? !before
          : before && source.version(before) >= source.version(event.item))
      ) {
        continue;
      }
      if (kind === "deleted") {
        next.delete(key);
        highlights.delete(key);
      } else {
        if (!changesOnly) next.set(key, event.item);
        highlights.add(key);
      }
      added.push({ kind, key, item: event.item, revision: event.revision, at: Date.now() });
    }
    // Snapshot events come first and alone; the first response without one means it is complete.
    if (!sawSnapshot) snapshotComplete = true;
    items = next;
    if (revision === undefined || batch.revision > revision) revision = batch.revision;
    if (added.length > 0) {
      tell({ kind: "changes", entries: added });
      activity = [...added.reverse(), ...activity].slice(0, activityLimit);
    }
    emit();
  }

  function tell(change: CollectionChange<Item>): void {
    for (const listener of changeListeners) listener(change);
  }

  /** Where a collection of changes starts, or starts again after losing track. */
  async function fromHead(signal: AbortSignal, received: () => void): Promise<bigint> {
    const current = await (head as NonNullable<typeof head>)(signal);
    received();
    if (revision !== undefined) tell({ kind: "lost" });
    revision = current;
    mustResync = false;
    emit();
    return current;
  }

  async function resync(signal: AbortSignal, received: () => void): Promise<bigint> {
    const fresh = new Map<string, Item>();
    let listed = 0n;
    for await (const page of listPages(source, signal)) {
      received();
      listed = page.revision;
      for (const item of page.items) fresh.set(source.key(item), item);
    }
    // What changed while the watch could not resume, as far as a list can tell.
    const added: ActivityEntry<Item>[] = [];
    const at = Date.now();
    for (const [key, item] of fresh) {
      const before = items.get(key);
      if (before && source.version(before) === source.version(item)) continue;
      highlights.add(key);
      added.push({ kind: before ? "updated" : "created", key, item, revision: listed, at });
    }
    for (const [key, item] of items) {
      if (!fresh.has(key)) added.push({ kind: "deleted", key, item, revision: listed, at });
    }
    if (added.length > 0) activity = [...added, ...activity].slice(0, activityLimit);
    items = fresh;
    revision = listed;
    snapshotComplete = true;
    mustResync = false;
    emit();
    return listed;
  }

  async function connect(signal: AbortSignal, received: () => void): Promise<void> {
    for (let outOfRange = 0; ; ) {
      try {
        const start = changesOnly
          ? revision === undefined || mustResync
            ? await fromHead(signal, received)
            : revision
          : mustResync
            ? await resync(signal, received)
            : (revision ?? 0n);
        if (start === 0n) {
          snapshotComplete = false;
          snapshotReplaces = revision !== undefined;
        }
        for await (const batch of source.watch(start, signal)) {
          received();
          apply(batch);
        }
        return;
      } catch (error) {
        // A snapshot that broke off half way cannot be resumed: its remaining items have no
        // revision of their own.
        if (!changesOnly && !snapshotComplete && revision !== undefined) mustResync = true;
        if (ConnectError.from(error).code !== Code.OutOfRange || ++outOfRange > 1) throw error;
        mustResync = true;
      }
    }
  }

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => view,
    subscribeChanges(listener) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    start() {
      if (stream) return;
      streamState = connectingState;
      emit();
      stream = startResilientStream({
        ...options.stream,
        connect,
        onState(state) {
          streamState = state;
          emit();
        },
      });
    },
    stop() {
      stream?.stop();
      stream = undefined;
      highlights.stop();
    },
    retryNow: () => stream?.retryNow(),
  };
}
