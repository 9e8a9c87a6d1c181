/**
 * The keys of the rows that changed in the last moments, for a view to light up: each key stays
 * for `highlightMs` after its change, and `onExpire` runs when the next one fades (to render the
 * view without it).
 */
export function createHighlights(highlightMs: number, onExpire: () => void) {
  const until = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return {
    add(key: string): void {
      until.set(key, Date.now() + highlightMs);
    },
    delete(key: string): void {
      until.delete(key);
    },
    /** The keys lit now; forgets the others. */
    current(): ReadonlySet<string> {
      const now = Date.now();
      const lit = new Set<string>();
      for (const [key, end] of until) {
        if (end > now) lit.add(key);
        else until.delete(key);
      }
      return lit;
    },
    /** Runs `onExpire` when the next key fades; call after every render. */
    schedule(): void {
      clearTimeout(timer);
      if (until.size === 0) return;
      const next = Math.min(...until.values());
      timer = setTimeout(onExpire, Math.max(0, next - Date.now()) + 10);
    },
    stop(): void {
      clearTimeout(timer);
    },
  };
}
