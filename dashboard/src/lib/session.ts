import { Code, ConnectError } from "@connectrpc/connect";
import { type Identity, parseIdentity, type SessionGrant, sameIdentity } from "./identity.ts";

/**
 * Where the sign-in is: off (the services run without tokens), reading the session this tab kept,
 * signed out, asking for a token, or signed in.
 */
export type SessionView =
  | { status: "off" }
  | { status: "restoring" }
  | { status: "signed-out"; error: string | undefined }
  | { status: "signing-in"; identity: Identity }
  | { status: "signed-in"; identity: Identity };

/** The page's session: who it acts as, and the bearer token every call carries. */
export interface SessionStore {
  subscribe(listener: () => void): () => void;
  getSnapshot(): SessionView;
  /** What the server renders, and the browser before `start()`: nothing is known yet. */
  getServerSnapshot(): SessionView;
  /** Picks up the session this tab kept (renewing it if it expired), and keeps it renewed. */
  start(): void;
  /** Stops renewing; `start()` resumes. */
  stop(): void;
  /** Asks for a token for `identity`; false (and the reason in the view) when that failed. */
  signIn(identity: Identity): Promise<boolean>;
  signOut(): void;
  /**
   * The token for the next call, renewed first when it is about to expire; undefined when signed
   * out or when sign-in is off. Throws `unavailable` when it expired and could not be renewed.
   */
  token(): Promise<string | undefined>;
  /** The services refused `token` (`unauthenticated`): the next call gets a new one. */
  refused(token: string): void;
}

/** How a session store gets and keeps its tokens; the defaults are the browser's. */
export interface SessionStoreOptions {
  /** False when the dashboard has no signing key: no tokens are asked for or sent. */
  enabled: boolean;
  /** Default: POST /api/session on the dashboard's server. */
  requestToken?: (identity: Identity) => Promise<SessionGrant>;
  /** Where the session survives a reload, shared by the tabs. Default: localStorage. */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem"> | undefined;
  /**
   * Calls `changed` when another tab changes the kept session (signs in, renews, signs out);
   * returns how to stop. Default: the window's `storage` events.
   */
  watchStorage?: (changed: () => void) => () => void;
  now?: () => number;
}

/** A token as held in memory and in the tab's storage; times on the browser's clock. */
interface Held {
  identity: Identity;
  token: string;
  obtainedAt: number;
  expiresAt: number;
}

const storageKey = "shop-dashboard.session";
/** A token is renewed when a quarter of its life (at most a minute) is left. */
const renewalMarginMs = (held: Held) => Math.min(60_000, (held.expiresAt - held.obtainedAt) / 4);
const renewalRetryMs = 5_000;

/**
 * Keeps the page's session: asks the dashboard's server for a token, keeps it in memory and in
 * localStorage (so a reload, and a link opened in another tab, stay signed in), and renews it
 * before it expires, both on a timer and when a call finds it close to expiry. Concurrent callers
 * share one renewal. The tabs follow each other: a sign-in, a renewal or a sign-out in one tab is
 * taken up by the others.
 */
export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const enabled = options.enabled;
  const requestToken = options.requestToken ?? requestFromDashboard;
  const storage = options.storage ?? browserStorage();
  const watchStorage = options.watchStorage ?? watchOtherTabs;
  let unwatch: (() => void) | undefined;
  const now = options.now ?? Date.now;
  const serverView: SessionView = enabled ? { status: "restoring" } : { status: "off" };
  const listeners = new Set<() => void>();
  let view: SessionView = serverView;
  let held: Held | undefined;
  let renewing: Promise<Held> | undefined;
  // Bumped by every sign-in and sign-out, so that a late answer for an earlier session is dropped.
  let generation = 0;
  let started = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function setView(next: SessionView): void {
    view = next;
    for (const listener of listeners) listener();
  }

  async function obtain(identity: Identity): Promise<Held> {
    // The browser's clock at the request: the token expires no earlier than this plus its lifetime.
    const requestedAt = now();
    const grant = await requestToken(identity);
    return {
      identity: grant.identity,
      token: grant.token,
      obtainedAt: requestedAt,
      expiresAt: requestedAt + grant.expiresInSeconds * 1000,
    };
  }

  function adopt(next: Held): void {
    held = next;
    save(storage, next);
    if (view.status !== "signed-in" || !sameIdentity(view.identity, next.identity)) {
      setView({ status: "signed-in", identity: next.identity });
    }
    schedule(next.expiresAt - renewalMarginMs(next) - now());
  }

  function schedule(delayMs: number): void {
    clearTimeout(timer);
    timer = undefined;
    if (!started || !held) return;
    timer = setTimeout(
      () => {
        renew().catch(() => schedule(renewalRetryMs));
      },
      Math.max(0, delayMs),
    );
  }

  function renew(): Promise<Held> {
    const current = held;
    if (!current) return Promise.reject(new Error("not signed in"));
    if (!renewing) {
      const at = generation;
      const attempt = obtain(current.identity).then((next) => {
        if (at !== generation) throw new Error("the session changed meanwhile");
        adopt(next);
        return next;
      });
      renewing = attempt;
      const settle = () => {
        if (renewing === attempt) renewing = undefined;
      };
      attempt.then(settle, settle);
    }
    return renewing;
  }

  /** Another tab changed the kept session: this one takes it up. */
  function followOtherTab(): void {
    const saved = load(storage);
    if (!saved) {
      if (held || view.status === "signing-in") forget(undefined);
      return;
    }
    if (held?.token === saved.token || now() >= saved.expiresAt) return;
    if (!held || !sameIdentity(held.identity, saved.identity)) generation++;
    renewing = undefined;
    adopt(saved);
  }

  function forget(error: string | undefined): void {
    generation++;
    held = undefined;
    renewing = undefined;
    clearTimeout(timer);
    timer = undefined;
    remove(storage);
    setView({ status: "signed-out", error });
  }

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => view,
    getServerSnapshot: () => serverView,
    start() {
      if (!enabled || started) return;
      started = true;
      unwatch = watchStorage(followOtherTab);
      if (view.status !== "restoring") {
        if (held) schedule(held.expiresAt - renewalMarginMs(held) - now());
        return;
      }
      const saved = load(storage);
      if (!saved) {
        setView({ status: "signed-out", error: undefined });
      } else if (now() < saved.expiresAt - renewalMarginMs(saved)) {
        adopt(saved);
      } else {
        // Expired while the tab was closed or asleep: the same identity signs in again.
        held = saved;
        renew().catch((error: unknown) =>
          forget(`Your session could not be renewed: ${describe(error)}`),
        );
      }
    },
    stop() {
      started = false;
      unwatch?.();
      unwatch = undefined;
      clearTimeout(timer);
      timer = undefined;
    },
    async signIn(identity) {
      if (!enabled) return false;
      const at = ++generation;
      held = undefined;
      renewing = undefined;
      clearTimeout(timer);
      setView({ status: "signing-in", identity });
      try {
        const next = await obtain(identity);
        if (at !== generation) return false;
        adopt(next);
        return true;
      } catch (error) {
        if (at === generation) forget(`Could not sign in: ${describe(error)}`);
        return false;
      }
    },
    signOut() {
      if (enabled) forget(undefined);
    },
    async token() {
      const current = held;
      if (!enabled || !current) return undefined;
      if (now() < current.expiresAt - renewalMarginMs(current)) return current.token;
      try {
        return (await renew()).token;
      } catch (error) {
        // Close to expiry but not past it: this token still serves while renewal is retried.
        if (held === current && now() < current.expiresAt) return current.token;
        throw new ConnectError(
          `the session could not be renewed: ${describe(error)}`,
          Code.Unavailable,
        );
      }
    },
    refused(token) {
      if (held?.token !== token) return;
      // Whatever our clock says, the services no longer take it.
      held = { ...held, expiresAt: Math.min(held.expiresAt, now()) };
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof TypeError) return "the dashboard's server could not be reached";
  return error instanceof Error ? error.message : String(error);
}

/** POST /api/session: the dashboard's server signs a token for `identity`. */
async function requestFromDashboard(identity: Identity): Promise<SessionGrant> {
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(identity),
    cache: "no-store",
  });
  const body = (await response.json().catch(() => undefined)) as
    | Partial<SessionGrant & { error: string }>
    | undefined;
  if (!response.ok) throw new Error(body?.error ?? `the sign-in answered ${response.status}`);
  const parsed = parseIdentity(body?.identity);
  if (
    "problem" in parsed ||
    typeof body?.token !== "string" ||
    typeof body.expiresInSeconds !== "number"
  ) {
    throw new Error("the sign-in answered something other than a token");
  }
  return { identity: parsed.identity, token: body.token, expiresInSeconds: body.expiresInSeconds };
}

/** The window's `storage` events for the kept session (fired by the other tabs' changes). */
function watchOtherTabs(changed: () => void): () => void {
  if (typeof window === "undefined") return () => {};
  const listener = (event: StorageEvent) => {
    if (event.key === storageKey || event.key === null) changed();
  };
  window.addEventListener("storage", listener);
  return () => window.removeEventListener("storage", listener);
}

function browserStorage(): SessionStoreOptions["storage"] {
  try {
    return typeof localStorage === "undefined" ? undefined : localStorage;
  } catch {
    // Storage disabled by the browser's settings: the session lasts until the page is left.
    return undefined;
  }
}

function save(storage: SessionStoreOptions["storage"], held: Held): void {
  try {
    storage?.setItem(storageKey, JSON.stringify(held));
  } catch {
    // Full or disabled: the session is kept in memory only.
  }
}

function remove(storage: SessionStoreOptions["storage"]): void {
  try {
    storage?.removeItem(storageKey);
  } catch {
    // Nothing kept.
  }
}

function load(storage: SessionStoreOptions["storage"]): Held | undefined {
  try {
    const value = JSON.parse(storage?.getItem(storageKey) ?? "null") as Partial<Held> | null;
    const parsed = parseIdentity(value?.identity);
    if (
      !value ||
      "problem" in parsed ||
      typeof value.token !== "string" ||
      typeof value.obtainedAt !== "number" ||
      typeof value.expiresAt !== "number"
    ) {
      return undefined;
    }
    return {
      identity: parsed.identity,
      token: value.token,
      obtainedAt: value.obtainedAt,
      expiresAt: value.expiresAt,
    };
  } catch {
    return undefined;
  }
}
