import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import {
  createServiceCredentials,
  createSigner,
  createVerifier,
  ensureLocalKeys,
  InvalidTokenError,
  jwksFile,
  KeysUnavailableError,
  localIssuer,
  privateKeyFile,
  readJwks,
  readPrivateKey,
  serviceSigner,
} from "../src/index.ts";

const dir = mkdtempSync(path.join(tmpdir(), "auth-keys-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const signerFor = async (name: string) =>
  createSigner({
    privateKey: readPrivateKey(privateKeyFile(dir, name)),
    issuer: localIssuer,
    audience: "shop",
  });

test("local keys: made once, private keys readable by their owner only, the JWKS holds no private part", async () => {
  await ensureLocalKeys(dir, ["sign-in", serviceSigner("orders")]);
  const before = readFileSync(privateKeyFile(dir, "sign-in"), "utf8");
  await ensureLocalKeys(dir, ["sign-in", serviceSigner("orders")]);
  assert.equal(readFileSync(privateKeyFile(dir, "sign-in"), "utf8"), before, "kept, not remade");
  assert.equal(statSync(privateKeyFile(dir, serviceSigner("orders"))).mode & 0o077, 0);
  const jwks = readJwks(jwksFile(dir));
  assert.deepEqual(
    jwks.keys.map((key) => key.kid),
    ["sign-in", "service:orders"],
  );
  for (const key of jwks.keys) assert.equal(key.d, undefined);
});

test("a verifier from a JWKS URL accepts the keys served there and picks up a key added later", async () => {
  await ensureLocalKeys(dir, ["sign-in"]);
  let served = readJwks(jwksFile(dir));
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(served));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const verify = createVerifier({
      jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      issuer: localIssuer,
      audience: "shop",
      algorithms: ["ES256"],
      jwksCooldownMs: 200,
    });
    const token = await (await signerFor("sign-in")).sign(
      { subject: "u1", roles: ["customer"] },
      60,
    );
    const identity = await verify(token);
    assert.equal(identity.subject, "u1");
    assert.deepEqual(identity.roles, ["customer"]);
    assert.ok(identity.expiresAt && identity.expiresAt > Date.now());
    assert.equal(fetches, 1);
    // A new signer's key appears at the endpoint: tokens it signs are accepted without a restart.
    await ensureLocalKeys(dir, ["sign-in", "rotated"]);
    const rotated = await (await signerFor("rotated")).sign({ subject: "u2", roles: [] }, 60);
    await assert.rejects(verify(rotated), InvalidTokenError, "not served yet");
    served = readJwks(jwksFile(dir));
    // jose refetches on an unknown kid, at most once per cooldown.
    await waitForAccepted(() => verify(rotated));
    assert.ok(fetches >= 2);
  } finally {
    server.close();
  }
});

async function waitForAccepted(verify: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await verify();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

test("service credentials are renewed after half their life, and shared by concurrent callers", async () => {
  await ensureLocalKeys(dir, [serviceSigner("orders")]);
  const credentials = createServiceCredentials(
    await signerFor(serviceSigner("orders")),
    "orders",
    2,
  );
  const [first, same] = await Promise.all([credentials(), credentials()]);
  assert.equal(first, same);
  const verify = createVerifier({
    jwks: readJwks(jwksFile(dir)),
    issuer: localIssuer,
    audience: "shop",
    algorithms: ["ES256"],
  });
  const identity = await verify(first);
  assert.equal(identity.subject, "orders");
  assert.deepEqual(identity.roles, ["service"]);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.notEqual(await credentials(), first, "renewed after half its life");
});

test("a JWKS endpoint that is down or broken makes tokens uncheckable, not invalid", async () => {
  await ensureLocalKeys(dir, ["sign-in"]);
  const token = await (await signerFor("sign-in")).sign({ subject: "u1", roles: [] }, 60);
  const broken = createServer((_req, res) => {
    res.statusCode = 500;
    res.end("oops");
  });
  await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
  const { port } = broken.address() as AddressInfo;
  broken.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const down = createVerifier({
    jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    issuer: localIssuer,
    audience: "shop",
    algorithms: ["ES256"],
  });
  await assert.rejects(down(token), KeysUnavailableError);
  const failing = createServer((_req, res) => {
    res.statusCode = 500;
    res.end("oops");
  });
  await new Promise<void>((resolve) => failing.listen(0, "127.0.0.1", resolve));
  try {
    const verify = createVerifier({
      jwksUrl: `http://127.0.0.1:${(failing.address() as AddressInfo).port}/jwks.json`,
      issuer: localIssuer,
      audience: "shop",
      algorithms: ["ES256"],
    });
    await assert.rejects(verify(token), KeysUnavailableError);
    // A token that is not even a JWT is invalid whatever the keys.
    await assert.rejects(verify("nonsense"), InvalidTokenError);
  } finally {
    failing.close();
  }
});

test("a service's key signs only that service's identity, and only such a key signs one", async () => {
  await ensureLocalKeys(dir, ["sign-in", serviceSigner("orders")]);
  const verify = createVerifier({
    jwks: readJwks(jwksFile(dir)),
    issuer: localIssuer,
    audience: "shop",
    algorithms: ["ES256"],
  });
  const orders = await signerFor(serviceSigner("orders"));
  const signIn = await signerFor("sign-in");
  const refused = [
    ["the orders key minting an admin", orders.sign({ subject: "admin", roles: ["admin"] }, 60)],
    [
      "the orders key adding a role",
      orders.sign({ subject: "orders", roles: ["service", "admin"] }, 60),
    ],
    [
      "the orders key naming another service",
      orders.sign({ subject: "users", roles: ["service"] }, 60),
    ],
    [
      "the sign-in key minting a service",
      signIn.sign({ subject: "orders", roles: ["service"] }, 60),
    ],
  ] as const;
  for (const [what, token] of refused) {
    await assert.rejects(verify(await token), InvalidTokenError, what);
  }
  const own = await verify(await orders.sign({ subject: "orders", roles: ["service"] }, 60));
  assert.equal(own.subject, "orders");
  const admin = await verify(await signIn.sign({ subject: "admin", roles: ["admin"] }, 60));
  assert.deepEqual(admin.roles, ["admin"]);
});
