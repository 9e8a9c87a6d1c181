// The three services in this process with authentication on, as npm start runs them: local keys
// in a temporary folder, every service trusting their JWKS, the orders service calling the others
// with its own identity. Handlers are counted, so that a test can show that none ran.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  type Claims,
  createServiceCredentials,
  createSigner,
  defaultAudience,
  ensureLocalKeys,
  jwksFile,
  localIssuer,
  privateKeyFile,
  readPrivateKey,
  type Signer,
  serviceSigner,
} from "@shop/auth";
import type { RunningService, ServiceDefinition } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase } from "@shop/testing";
import { inventoryService } from "../../services/inventory/src/app.ts";
import { ordersService } from "../../services/orders/src/app.ts";
import { usersService } from "../../services/users/src/app.ts";

/** The running mesh and what a test needs to sign in to it. */
export interface AuthMesh {
  users: RunningService;
  inventory: RunningService;
  orders: RunningService;
  /** The folder of the local keys (its `sign-in` key signs people in). */
  keyDir: string;
  /** Signs with the trusted sign-in key, for the configured issuer and audience. */
  signer: Signer;
  /** Mints a token that is valid for `ttlSeconds` (default 5 minutes). */
  token(claims: Claims, ttlSeconds?: number): Promise<string>;
  /** Every handler invocation, as "Service/Method". */
  handlerCalls: string[];
  stop(): Promise<void>;
}

/**
 * Starts users, inventory (with the demo catalog) and orders with authentication on, with `env`
 * added. The keys go to `options.keyDir` (kept), or to a temporary folder (removed by `stop()`).
 */
export async function startAuthMesh(
  env: Record<string, string> = {},
  options: { keyDir?: string } = {},
): Promise<AuthMesh> {
  const keyDir = options.keyDir ?? mkdtempSync(path.join(tmpdir(), "auth-mesh-"));
  await ensureLocalKeys(keyDir, ["sign-in", serviceSigner("orders")]);
  const authEnv = {
    AUTH: "on",
    AUTH_ISSUER: localIssuer,
    AUTH_JWKS_FILE: jwksFile(keyDir),
    ...env,
  };
  const database: TestDatabase = await createTestDatabase();
  const handlerCalls: string[] = [];
  const users = await startTestService(counted(usersService, handlerCalls), database.url, authEnv);
  const inventory = await startTestService(
    counted(inventoryService({ seedDemoCatalog: true }), handlerCalls),
    database.url,
    authEnv,
  );
  const ordersSigner = await createSigner({
    privateKey: readPrivateKey(privateKeyFile(keyDir, serviceSigner("orders"))),
    issuer: localIssuer,
    audience: defaultAudience,
  });
  const orders = await startTestService(
    counted(
      ordersService({
        usersUrl: users.server.url,
        inventoryUrl: inventory.server.url,
        upstreamTimeoutMs: 5_000,
        credentials: createServiceCredentials(ordersSigner, "orders"),
      }),
      handlerCalls,
    ),
    database.url,
    authEnv,
  );
  const signer = await createSigner({
    privateKey: readPrivateKey(privateKeyFile(keyDir, "sign-in")),
    issuer: localIssuer,
    audience: defaultAudience,
  });
  return {
    users,
    inventory,
    orders,
    keyDir,
    signer,
    token: (claims, ttlSeconds = 300) => signer.sign(claims, ttlSeconds),
    handlerCalls,
    async stop() {
      await Promise.all([users, inventory, orders].map((service) => service.stop(100)));
      await database.drop();
      if (!options.keyDir) rmSync(keyDir, { recursive: true, force: true });
    },
  };
}

/** `definition` with every handler recording its invocation in `calls`. */
function counted<T extends Record<string, unknown>>(
  definition: ServiceDefinition<T>,
  calls: string[],
): ServiceDefinition<T> {
  return {
    ...definition,
    routes(deps) {
      const register = definition.routes(deps);
      return (router) => {
        const counting: ConnectRouter = {
          ...router,
          service(service, implementation, options) {
            const wrapped = Object.fromEntries(
              Object.entries(implementation).map(([name, handler]) => [
                name,
                (...args: unknown[]) => {
                  calls.push(`${service.typeName}/${name}`);
                  return (handler as (...a: unknown[]) => unknown).apply(implementation, args);
                },
              ]),
            ) as typeof implementation;
            return router.service(service, wrapped, options);
          },
        };
        register(counting);
      };
    },
  };
}
