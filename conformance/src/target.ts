// What the conformance runner needs from a server under test: where it listens, on which transports,
// and how to stop it. Both the mesh runtime's server (server-under-test.ts) and the bare
// connect-node control (control-server.ts) are started behind this one shape, so that the runner
// judges them the same way.

/** A ConformanceService server the runner can send every permutation to. */
export interface ConformanceTarget {
  /** Shown in the report ("mesh runtime", "connect-node control"). */
  name: string;
  /** `http://127.0.0.1:port`: HTTP/1.1 and HTTP/2 with prior knowledge (h2c). */
  cleartextUrl: string;
  /** `https://127.0.0.1:port` with ALPN h2 and http/1.1; absent when the target serves no TLS. */
  tlsUrl?: string;
  /** PEM of the certificate authority that signed the TLS certificate (trust it, nothing else). */
  caCertPem?: string;
  /** Headers the runner adds to every request (an `authorization` token), beyond the case's own. */
  extraHeaders?: Record<string, string>;
  /** HTTP versions each transport serves; the runner skips permutations the target cannot serve. */
  httpVersions: { cleartext: ReadonlyArray<1 | 2>; tls: ReadonlyArray<1 | 2> };
  /** Largest request message the server accepts, in bytes. */
  maxReceiveBytes: number;
  /** Whether TLS asks for client certificates and refuses those `clientCaCertPem` did not sign. */
  verifiesClientCerts: boolean;
  close(): Promise<void>;
}

/** How the runner wants a target started (as the official runner's ServerCompatRequest asks). */
export interface TargetOptions {
  /** Serve TLS as well (the cleartext port stays). */
  tls: boolean;
  /** With `tls`: require client certificates signed by `clientCaCertPem`. */
  clientCaCertPem?: string;
  /** Refuse request messages larger than this many bytes (`resource_exhausted`); absent: the default. */
  messageReceiveLimit?: number;
}

/** Starts a target as asked; the runner starts one per distinct `TargetOptions` a suite needs. */
export type StartTarget = (options: TargetOptions) => Promise<ConformanceTarget>;
