// Certificates for the TLS permutations, made in memory at start-up (no files, no openssl): a
// certificate authority, a server certificate for 127.0.0.1 and localhost, and a client
// certificate for the suites that verify client certificates (tls_client_certs).
// @peculiar/x509 needs a Reflect metadata polyfill loaded before it (its README says so).
import "reflect-metadata";
import { KeyObject, webcrypto } from "node:crypto";
import {
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from "@peculiar/x509";

/** A certificate and its private key, both PEM. */
export interface CertifiedKey {
  certPem: string;
  keyPem: string;
}

/** A certificate authority and the server and client certificates it signed. */
export interface TlsMaterial {
  /** The authority's certificate: what a client trusts, and what a server verifies clients with. */
  caCertPem: string;
  /** For 127.0.0.1 and localhost, usable only by a server. */
  server: CertifiedKey;
  /** Usable only by a client. */
  client: CertifiedKey;
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

/** Makes a fresh authority and its server and client certificates, valid for one day. */
export async function createTlsMaterial(): Promise<TlsMaterial> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 60 * 60_000);
  const caKeys = await generateKeys();
  const ca = await X509CertificateGenerator.createSelfSigned({
    name: "CN=shop conformance CA",
    keys: caKeys,
    notBefore,
    notAfter,
    signingAlgorithm: algorithm,
    extensions: [
      new BasicConstraintsExtension(true, 0, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
    ],
  });
  const issue = async (subject: string, usage: ExtendedKeyUsage, names: boolean) => {
    const keys = await generateKeys();
    const cert = await X509CertificateGenerator.create({
      subject,
      issuer: ca.subject,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      notBefore,
      notAfter,
      signingAlgorithm: algorithm,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([usage]),
        ...(names
          ? [
              new SubjectAlternativeNameExtension([
                { type: "ip", value: "127.0.0.1" },
                { type: "dns", value: "localhost" },
              ]),
            ]
          : []),
      ],
    });
    return { certPem: cert.toString("pem"), keyPem: privateKeyPem(keys.privateKey) };
  };
  return {
    caCertPem: ca.toString("pem"),
    server: await issue("CN=localhost", ExtendedKeyUsage.serverAuth, true),
    client: await issue("CN=shop conformance client", ExtendedKeyUsage.clientAuth, false),
  };
}

function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
}

function privateKeyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString();
}
