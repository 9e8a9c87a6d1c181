import { Code, ConnectError } from "@connectrpc/connect";
import {
  type CollectionSource,
  EventKind,
  listPages,
  type SourceBatch,
} from "./live-collection.ts";

/**
 * Streams shared by the dashboard's tabs.
 *
 * A browser opens at most six HTTP/1.1 connections per origin, shared by all its tabs, and every
 * open stream holds one of them: with a stream per service on every tab, the sixth tab of a
 * service waited for a connection that never came. Here one tab per stream opens it: the tab
 * holding the Web Lock named after the stream (`navigator.locks`, which the browser releases when
 * the tab goes away) reads it and posts what it receives on a BroadcastChannel of the same name;
 * the other tabs follow the channel and queue for the lock, so that when the reading tab closes or
 * its stream fails, the next tab in line opens the stream where it left off.
 *
 * Names carry the identity the calls are made as: a tab never follows what another identity was
 * shown. Without Web Locks or BroadcastChannel (an old browser), each tab opens its own streams.
 */

/**
 * What a reading tab posts for a collection: the changes after `from`, up to `revision`; or that
 * its stream dropped (the followers show it too, and reconnect as it does).
 */
type CollectionPost<Item> =
  | {
      kind: "batch";
      /** The revision the reading tab had before this batch: a follower behind it missed changes. */
      from: bigint;
      batch: SourceBatch<Item>;
    }
  | { kind: "hello" }
  | Down;

/** What a reading tab posts for a value, and what a new tab asks it for. */
type ValuePost<T> = { kind: "value"; value: T } | { kind: "hello" } | Down;

/** The reading tab's stream dropped: a follower's ends too, and reconnects. */
interface Down {
  kind: "down";
  reason: string;
}

function streamDown(name: string, post: Down): ConnectError {
  return new ConnectError(`the tab reading ${name} lost it: ${post.reason}`, Code.Unavailable);
}

/** Reads `stream` as the reading tab, and tells the followers when it drops. */
async function* reading<T>(
  tab: { post(post: Down): void },
  stream: AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T> {
  let reason = "it ended";
  try {
    yield* stream;
  } catch (error) {
    reason = ConnectError.from(error).rawMessage;
    throw error;
  } finally {
    // A tab that closes lets the next one in line read on; only a drop is news.
    if (!signal.aborted) tab.post({ kind: "down", reason });
  }
}

/** Whether this browser has what sharing needs. */
function canShare(): boolean {
  return (
    typeof BroadcastChannel !== "undefined" && typeof navigator !== "undefined" && !!navigator.locks
  );
}

/**
 * `source` with its watch shared between the tabs that watch `name`. The tab reading the stream
 * posts every batch of changes (not its snapshot); a tab that follows starts from a list of the
 * collection when it starts from 0, skips what it already has, and reads the changes it missed
 * with a short watch of its own when a post starts past its revision (after the reading tab
 * changed, say).
 */
export function shareCollection<Item>(
  name: string,
  source: CollectionSource<Item>,
): CollectionSource<Item> {
  if (!canShare()) return source;
  return {
    ...source,
    async *watch(startRevision, signal) {
      const tab = new SharedStream<CollectionPost<Item>>(name, signal);
      let revision = startRevision;
      let readingNow = false;
      // A tab that follows again (after a drop, say) is told the reading tab's revision at once,
      // as a heartbeat: it is live again, and reads what it missed meanwhile (catchUp), instead
      // of waiting for the next change, which may be long in coming.
      tab.onPost = (post) => {
        if (post.kind === "hello" && tab.leading && readingNow) {
          tab.post({ kind: "batch", from: revision, batch: { revision, events: [] } });
        }
      };
      try {
        if (!(await tab.leadsAtOnce())) {
          // Another tab reads the stream, past its snapshot: a tab from 0 lists the collection.
          if (startRevision === 0n) revision = yield* listAsSnapshot(source, signal);
          else tab.post({ kind: "hello" });
        }
        for (;;) {
          const post = await tab.next();
          if (post === undefined) break;
          if (post.kind === "hello") continue;
          if (post.kind === "down") throw streamDown(name, post);
          if (post.from > revision) {
            // The reading tab is ahead (it took over from where it was): this tab reads the
            // changes in between itself, then follows on.
            for await (const batch of catchUp(source, revision, post.from, signal)) {
              if (batch.revision > revision) revision = batch.revision;
              yield batch;
            }
          }
          if (post.batch.revision > revision) revision = post.batch.revision;
          yield post.batch;
        }
        if (signal.aborted) return;
        // This tab reads the stream now, from where it is, and tells the others.
        for await (const batch of reading(tab, source.watch(revision, signal), signal)) {
          const snapshot = batch.events.some((event) => event.type === EventKind.snapshot);
          if (!snapshot) tab.post({ kind: "batch", from: revision, batch });
          if (batch.revision > revision) revision = batch.revision;
          // Its stream is open and past its snapshot: its revision is news to a tab that asks.
          readingNow = !snapshot;
          yield batch;
        }
      } finally {
        tab.close();
      }
    },
  };
}

/**
 * The changes after `from` up to `to` at least, from a watch of this tab's own that closes once it
 * has them. (A watch from a revision the service no longer keeps fails with `out_of_range`, and
 * the collection lists again.)
 */
async function* catchUp<Item>(
  source: CollectionSource<Item>,
  from: bigint,
  to: bigint,
  signal: AbortSignal,
): AsyncGenerator<SourceBatch<Item>> {
  const done = new AbortController();
  const stop = () => done.abort();
  signal.addEventListener("abort", stop);
  try {
    for await (const batch of source.watch(from, done.signal)) {
      yield batch;
      if (batch.revision >= to) return;
    }
  } finally {
    signal.removeEventListener("abort", stop);
    done.abort();
  }
}

/** Lists all of `source` as snapshot batches, then an empty one; returns the list's revision. */
async function* listAsSnapshot<Item>(
  source: CollectionSource<Item>,
  signal: AbortSignal,
): AsyncGenerator<SourceBatch<Item>, bigint> {
  let revision = 0n;
  for await (const page of listPages(source, signal)) {
    revision = page.revision;
    const events = page.items.map((item) => ({ type: EventKind.snapshot, item, revision }));
    yield { revision, events };
  }
  // A batch without snapshot events tells the collection that its snapshot is whole.
  yield { revision, events: [] };
  return revision;
}

/**
 * `open`'s stream shared between the tabs that open `name`: the reading tab posts every value; a
 * tab that follows asks for the latest when it starts.
 */
export function shareValue<T>(
  name: string,
  open: (signal: AbortSignal) => AsyncIterable<T>,
): (signal: AbortSignal) => AsyncIterable<T> {
  if (!canShare()) return open;
  return async function* (signal) {
    const tab = new SharedStream<ValuePost<T>>(name, signal);
    let latest: { value: T } | undefined;
    // A tab that starts to follow gets the reading tab's latest value at once.
    tab.onPost = (post) => {
      if (post.kind === "hello" && tab.leading && latest) {
        tab.post({ kind: "value", value: latest.value });
      }
    };
    try {
      if (!(await tab.leadsAtOnce())) tab.post({ kind: "hello" });
      for (;;) {
        const post = await tab.next();
        if (post === undefined) break;
        if (post.kind === "down") throw streamDown(name, post);
        if (post.kind === "value") yield post.value;
      }
      if (signal.aborted) return;
      for await (const value of reading(tab, open(signal), signal)) {
        latest = { value };
        tab.post({ kind: "value", value });
        yield value;
      }
    } finally {
      tab.close();
    }
  };
}

/**
 * One tab's end of a shared stream: its channel, and its place in line for the lock. `next()`
 * gives the posts of the reading tab, in order, and undefined once this tab holds the lock (it
 * reads the stream itself from then on) or `signal` aborted.
 */
class SharedStream<Post> {
  leading = false;
  private closed = false;
  /** Sees every post, before `next()` does (for answering a new tab). */
  onPost: ((post: Post) => void) | undefined;
  private readonly channel: BroadcastChannel;
  private readonly queued: Post[] = [];
  private wake: (() => void) | undefined;
  private readonly stopWaiting = new AbortController();
  private release: (() => void) | undefined;
  private readonly signal: AbortSignal;
  private readonly name: string;
  private readonly abort = () => this.notify();

  constructor(name: string, signal: AbortSignal) {
    this.name = name;
    this.signal = signal;
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (event: MessageEvent<Post>) => {
      this.onPost?.(event.data);
      // The reading tab reads no posts: only followers queue them.
      if (this.leading) return;
      this.queued.push(event.data);
      this.notify();
    };
    signal.addEventListener("abort", this.abort);
  }

  /** Takes the lock if no tab holds it; otherwise queues for it. True when this tab leads now. */
  async leadsAtOnce(): Promise<boolean> {
    const granted = await new Promise<boolean>((resolve) => {
      navigator.locks
        .request(this.name, { ifAvailable: true }, (lock) => {
          resolve(lock !== null);
          return lock === null ? undefined : this.hold();
        })
        .catch(() => resolve(false));
    });
    if (granted || this.closed) return granted;
    // In line: the callback runs when the tab ahead lets go, and holds the lock until close().
    navigator.locks
      .request(this.name, { signal: this.stopWaiting.signal }, () => this.hold())
      .catch(() => {
        // Closed while waiting in line.
      });
    return false;
  }

  /** The next post, or undefined once this tab leads (after the posts from before) or its signal aborted. */
  async next(): Promise<Post | undefined> {
    for (;;) {
      if (this.signal.aborted) return undefined;
      // Posts that came before the lock are read first, so that a drop the tab ahead posted
      // before letting go reaches this one. (One that comes after the lock is dropped: this tab
      // reads the stream itself by then, and shows a drop of its own if it has one.)
      const post = this.queued.shift();
      if (post !== undefined) return post;
      if (this.leading) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  post(post: Post | Down): void {
    this.channel.postMessage(post);
  }

  close(): void {
    this.closed = true;
    this.signal.removeEventListener("abort", this.abort);
    this.stopWaiting.abort();
    this.release?.();
    this.channel.close();
    this.notify();
  }

  /** Holds the lock just granted until close(), by the promise its callback returns. */
  private hold(): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.leading = true;
    this.notify();
    return new Promise<void>((resolve) => {
      this.release = resolve;
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
