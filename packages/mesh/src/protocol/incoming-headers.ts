import type { IncomingHttpHeaders } from "node:http2";

/**
 * HTTP/2 headers (a request's, or an answer's headers or trailers) as Web `Headers`, read straight
 * from the object Node parsed them into until something asks for more than `get` or `has`; then
 * they are copied into a `Headers`, once, which answers from then on. Building a `Headers`
 * validates and copies every header of every call, where most calls only look up two or three
 * (content type, timeout, authorization).
 * Pseudo-headers (`:path`, ...) are not headers and are left out, as connect-node leaves them out.
 * A long call (a watch) keeps them as a flat list of names and values instead (`compact`): Node's
 * object is a dictionary several times that size.
 * It is not `instanceof Headers`; nothing that reads request headers here asks.
 */
export class IncomingHeaders implements Headers {
  #incoming: IncomingHttpHeaders | undefined;
  /** Names and values, one after the other, once compacted. */
  #flat: string[] | undefined;
  #copy: Headers | undefined;

  constructor(incoming: IncomingHttpHeaders) {
    this.#incoming = incoming;
  }

  /** Keeps the headers as a flat list from now on, and lets go of Node's object. */
  compact(): void {
    const incoming = this.#incoming;
    if (incoming === undefined) return;
    const flat: string[] = [];
    for (const name in incoming) {
      if (name.charCodeAt(0) === colon) continue;
      const value = incoming[name];
      if (typeof value === "string") flat.push(name, value);
      else if (Array.isArray(value)) for (const item of value) flat.push(name, item);
    }
    this.#flat = flat;
    this.#incoming = undefined;
  }

  get(name: string): string | null {
    const incoming = this.#incoming;
    if (incoming !== undefined) return lookUp(incoming, name) ?? null;
    const flat = this.#flat;
    if (flat !== undefined) return lookUpFlat(flat, name) ?? null;
    return this.#headers().get(name);
  }

  has(name: string): boolean {
    const incoming = this.#incoming;
    if (incoming !== undefined) return lookUp(incoming, name) !== undefined;
    const flat = this.#flat;
    if (flat !== undefined) return lookUpFlat(flat, name) !== undefined;
    return this.#headers().has(name);
  }

  set(name: string, value: string): void {
    this.#headers().set(name, value);
  }

  append(name: string, value: string): void {
    this.#headers().append(name, value);
  }

  delete(name: string): void {
    this.#headers().delete(name);
  }

  getSetCookie(): string[] {
    return this.#headers().getSetCookie();
  }

  forEach(
    callback: (value: string, key: string, parent: Headers) => void,
    thisArg?: unknown,
  ): void {
    this.#headers().forEach((value, key) => {
      callback.call(thisArg, value, key, this);
    });
  }

  entries(): ReturnType<Headers["entries"]> {
    return this.#headers().entries();
  }

  keys(): ReturnType<Headers["keys"]> {
    return this.#headers().keys();
  }

  values(): ReturnType<Headers["keys"]> {
    return this.#headers().values();
  }

  [Symbol.iterator](): ReturnType<Headers["entries"]> {
    return this.#headers().entries();
  }

  #headers(): Headers {
    if (this.#copy === undefined) {
      this.compact();
      const copy = new Headers();
      const flat = this.#flat ?? [];
      for (let index = 0; index < flat.length; index += 2) {
        copy.append(flat[index] as string, flat[index + 1] as string);
      }
      this.#copy = copy;
      this.#flat = undefined;
    }
    return this.#copy;
  }
}

const colon = 58;

function lookUpFlat(flat: readonly string[], name: string): string | undefined {
  const key = name.toLowerCase();
  let found: string | undefined;
  for (let index = 0; index < flat.length; index += 2) {
    if (flat[index] !== key) continue;
    const value = flat[index + 1] as string;
    found = found === undefined ? value : `${found}, ${value}`;
  }
  return found;
}

function lookUp(incoming: IncomingHttpHeaders, name: string): string | undefined {
  const key = name.toLowerCase();
  if (key.charCodeAt(0) === colon) return undefined;
  const value = incoming[key];
  return Array.isArray(value) ? value.join(", ") : value;
}
