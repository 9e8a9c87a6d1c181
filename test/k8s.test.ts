// The Kubernetes manifests (deploy/base, and the overlay deploy/local) are valid by the Kubernetes
// API's schemas, checked offline (kubernetes-models), and consistent with what they run: each
// service's environment passes that service's own configuration schema, it is probed on /readyz and
// /healthz, drains before it stops, asks for the memory it was measured to hold at rest, is reached
// through the edge (deploy/base/Caddyfile, the file docker-compose.yml runs too) by its headless
// Service, and the migration Job's script migrates a database. (No cluster runs here: these checks
// catch what breaks when the services or the manifests change.)
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createTestDatabase } from "@shop/testing";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import postgres from "postgres";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig as inventoryConfig } from "../services/inventory/src/config.ts";
import { loadConfig as ordersConfig } from "../services/orders/src/config.ts";
import { loadConfig as usersConfig } from "../services/users/src/config.ts";
import { assertOrdersCallThroughEdge } from "./support/edge.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const base = path.join(root, "deploy", "base");
const local = path.join(root, "deploy", "local");

// biome-ignore lint/suspicious/noExplicitAny: manifests are read as plain YAML and checked below
type Manifest = Record<string, any>;

const models: Record<string, new (data: Manifest) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
};

/** Checks `manifest` against the Kubernetes API's schema of its kind; throws what is wrong. */
function validate(manifest: Manifest): void {
  const Model = models[`${manifest.apiVersion}/${manifest.kind}`];
  assert.ok(Model, `${manifest.apiVersion} ${manifest.kind} is a kind these manifests use`);
  try {
    new Model(manifest).validate();
  } catch (error) {
    assert.fail(`${manifest.kind} ${manifest.metadata?.name}: ${(error as Error).message}`);
  }
}

const manifestsIn = (folder: string): Manifest[] =>
  readdirSync(folder)
    .filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml")
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(folder, file), "utf8")).map(
        (document) => document.toJS() as Manifest,
      ),
    );
const manifests = [...manifestsIn(base), ...manifestsIn(local)];
const find = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata?.name === name);
  assert.ok(found, `${kind} ${name} is declared`);
  return found;
};
const kustomization = parse(readFileSync(path.join(base, "kustomization.yaml"), "utf8")) as {
  configMapGenerator: { name: string; literals?: string[] }[];
};

test("every manifest is valid by the Kubernetes API's schemas", () => {
  assert.ok(manifests.length >= 15, `${manifests.length} objects`);
  for (const manifest of manifests) validate(manifest);
  // The schemas do catch mistakes: a port given as text, a container without an image.
  const deployment = structuredClone(find("Deployment", "users"));
  deployment.spec.template.spec.containers[0].ports[0].containerPort = "8081";
  assert.throws(() => new Deployment(deployment).validate(), /containerPort/);
  const job = structuredClone(find("Job", "migrate"));
  delete job.spec.template.spec.containers;
  assert.throws(() => new Job(job).validate(), /containers/);
});

/** Whether `command args` runs here. */
function runs(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const kubectl = runs("kubectl", ["version", "--client"]);

test("kubectl kustomize renders the local overlay into valid objects that refer to each other", {
  skip: kubectl ? false : "kubectl is not installed here",
}, () => {
  const rendered = parseAllDocuments(
    execFileSync("kubectl", ["kustomize", local], { encoding: "utf8" }),
  ).map((document) => document.toJS() as Manifest);
  for (const manifest of rendered) validate(manifest);
  const named = (kind: string) =>
    new Set(rendered.filter((m) => m.kind === kind).map((m) => m.metadata.name as string));
  const configMaps = named("ConfigMap");
  const secrets = named("Secret");
  // The keys: Secrets the operator makes from scripts/auth-keys.ts (README, "Kubernetes").
  const operatorSecrets = new Set(["shop-auth-jwks", "shop-auth-orders", "shop-auth-sign-in"]);
  for (const manifest of rendered) {
    assert.equal(manifest.metadata.namespace ?? "shop", "shop", `${manifest.kind} namespace`);
    const pod = manifest.spec?.template?.spec;
    if (pod === undefined) continue;
    for (const container of pod.containers) {
      if (String(container.image).startsWith("shop-mesh/")) {
        assert.match(container.image, /:local$/, "the overlay runs the images built here");
      }
      for (const source of container.envFrom ?? []) {
        if (source.configMapRef) assert.ok(configMaps.has(source.configMapRef.name));
        if (source.secretRef) assert.ok(secrets.has(source.secretRef.name));
      }
      for (const variable of container.env ?? []) {
        const secret = variable.valueFrom?.secretKeyRef?.name;
        if (secret) assert.ok(secrets.has(secret), `${secret} is generated`);
      }
    }
    for (const volume of pod.volumes ?? []) {
      if (volume.configMap) assert.ok(configMaps.has(volume.configMap.name));
      if (volume.secret) assert.ok(operatorSecrets.has(volume.secret.secretName));
    }
  }
});

const configs = { users: usersConfig, inventory: inventoryConfig, orders: ordersConfig };
const sharedEnvironment = Object.fromEntries(
  (kustomization.configMapGenerator.find((g) => g.name === "shop-services")?.literals ?? []).map(
    (literal) => literal.split(/=(.*)/s).slice(0, 2) as [string, string],
  ),
);
/** Mebibytes of a memory quantity such as "96Mi" or "1Gi". */
const mebibytes = (quantity: string) =>
  Number.parseFloat(quantity) * (quantity.endsWith("Gi") ? 1024 : 1);

for (const [name, loadConfig] of Object.entries(configs)) {
  test(`${name}: its configuration, probes, drain, memory, disruption budget and headless Service`, () => {
    const deployment = find("Deployment", name);
    assert.equal(deployment.spec.replicas, 2);
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    const script = container.command.at(-1);
    assert.ok(existsSync(path.join(root, script)), `${script} exists`);
    const environment: Record<string, string> = { ...sharedEnvironment };
    for (const variable of container.env) {
      environment[variable.name] = variable.value ?? "postgres://from-a-secret/shop";
    }
    const config = loadConfig(environment);
    assert.ok(config.auth, "authentication is on");
    assert.equal(container.ports[0].containerPort, config.port);
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.ok(container.lifecycle.preStop.exec.command.includes("sleep"), "a pause to drain");
    // Measured at rest: 86-88 MiB RSS (bench/README.md, start-up).
    assert.ok(mebibytes(container.resources.requests.memory) >= 88);
    const mounts = new Map<string, string>(
      container.volumeMounts.map((m: Manifest) => [m.mountPath, m.name]),
    );
    const secretOf = (file: string) => {
      const volume = mounts.get(path.dirname(file));
      assert.ok(volume, `${file} is on a mounted volume`);
      return pod.volumes.find((v: Manifest) => v.name === volume)?.secret?.secretName;
    };
    assert.equal(secretOf(config.auth.jwksFile ?? ""), "shop-auth-jwks");

    const service = find("Service", name);
    assert.equal(service.spec.clusterIP, "None", "headless: every ready replica's address");
    assert.equal(service.spec.ports[0].port, config.port);
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
    const budget = find("PodDisruptionBudget", name);
    assert.equal(budget.spec.minAvailable, 1);
    assert.deepEqual(budget.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    const edge = find("Service", "edge");
    assert.ok(edge.spec.ports.some((p: Manifest) => p.port === config.port));
  });
}

test("orders calls users and inventory through the edge and holds its own signing key", () => {
  const container = find("Deployment", "orders").spec.template.spec.containers[0];
  const environment: Record<string, string> = { ...sharedEnvironment };
  for (const variable of container.env) {
    environment[variable.name] = variable.value ?? "postgres://from-a-secret/shop";
  }
  const config = ordersConfig(environment);
  assertOrdersCallThroughEdge(config, (upstream) => find("Service", upstream).spec.ports[0].port);
  const keyDirectory = path.dirname(config.auth?.serviceKeyFile ?? "");
  const mount = container.volumeMounts.find((m: Manifest) => m.mountPath === keyDirectory);
  const volume = find("Deployment", "orders").spec.template.spec.volumes.find(
    (v: Manifest) => v.name === mount?.name,
  );
  assert.equal(volume?.secret?.secretName, "shop-auth-orders");
});

const caddy = runs("caddy", ["version"]);

test("the edge's Caddyfile sends each service's port to the addresses of its headless Service", {
  skip: caddy ? false : "caddy is not installed here (.ci/run installs Debian's)",
}, () => {
  const adapted = JSON.parse(
    execFileSync("caddy", ["adapt", "--config", path.join(base, "Caddyfile")], {
      encoding: "utf8",
      // The names the manifests give: the defaults, with nothing set here.
      env: Object.fromEntries(
        Object.entries(process.env).filter(([key]) => !key.endsWith("_HOST")),
      ),
    }),
  ) as {
    apps: { http: { servers: Record<string, { listen: string[]; routes: Manifest[] }> } };
  };
  const edges = new Map<number, Manifest>();
  for (const server of Object.values(adapted.apps.http.servers)) {
    const port = Number(server.listen[0]?.replace(/^:/, ""));
    edges.set(port, server.routes[0]?.handle[0]);
  }
  for (const name of Object.keys(configs)) {
    const port = find("Service", name).spec.ports[0].port as number;
    const proxy = edges.get(port);
    assert.ok(proxy, `the edge listens on ${port}`);
    assert.equal(proxy.handler, "reverse_proxy");
    assert.deepEqual(
      { name: proxy.dynamic_upstreams?.name, port: Number(proxy.dynamic_upstreams?.port) },
      { name, port },
    );
    assert.equal(proxy.health_checks?.active?.uri, "/readyz");
    assert.equal(proxy.flush_interval, -1, "streams flushed as written");
  }
});

test("the migration Job runs scripts/migrate.ts, which migrates a database once", async () => {
  const job = find("Job", "migrate");
  const [container] = job.spec.template.spec.containers;
  assert.deepEqual(container.command, ["node", "scripts/migrate.ts"]);
  const database = await createTestDatabase();
  try {
    const run = () =>
      promisify(execFile)(process.execPath, [path.join(root, "scripts", "migrate.ts")], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: "warn" },
      });
    await run();
    await run();
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const tables = await sql<{ name: string }[]>`
        select table_schema || '.' || table_name as name from information_schema.tables
        where table_schema in ('users', 'inventory', 'orders') order by 1`;
      const names = tables.map((row) => row.name);
      for (const table of ["users.users", "inventory.products", "orders.orders"]) {
        assert.ok(names.includes(table), `${table} exists: ${names.join(", ")}`);
      }
    } finally {
      await sql.end();
    }
  } finally {
    await database.drop();
  }
});
