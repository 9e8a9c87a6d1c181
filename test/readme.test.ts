// The README's examples are run exactly as written, against the three services started on free
// ports (the default ports in the text are rewritten to them). A command that fails, or that an
// example shows succeeding but that answers with an error, turns this red.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { RunningService } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase } from "@shop/testing";
import { inventoryService } from "../services/inventory/src/app.ts";
import { ordersService } from "../services/orders/src/app.ts";
import { usersService } from "../services/users/src/app.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);

/** The shell blocks of the README that call running services (not install, start or test). */
function examples(): string[] {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((match) => match[1] ?? "")
    .filter((block) => /localhost:80\d\d/.test(block));
}

let database: TestDatabase;
const services: RunningService[] = [];
const ports = new Map<string, number>();

before(async () => {
  database = await createTestDatabase();
  const users = await startTestService(usersService, database.url);
  const inventory = await startTestService(
    inventoryService({ seedDemoCatalog: true }),
    database.url,
  );
  const orders = await startTestService(
    ordersService({
      usersUrl: users.server.url,
      inventoryUrl: inventory.server.url,
      upstreamTimeoutMs: 2_000,
    }),
    database.url,
  );
  services.push(users, inventory, orders);
  ports.set("8081", users.server.port);
  ports.set("8082", orders.server.port);
  ports.set("8083", inventory.server.port);
});

after(async () => {
  await Promise.all(services.map((service) => service.stop(100)));
  await database.drop();
});

test("the README has examples for buf curl over three protocols, curl POST and GET, and streaming", () => {
  const text = examples().join("\n");
  for (const protocol of ["connect", "grpc", "grpcweb"]) {
    assert.match(text, new RegExp(`buf curl --protocol ${protocol} `));
  }
  assert.match(text, /curl -s -X POST/);
  assert.match(text, /curl -s -G/);
  assert.match(text, /WatchUsers/);
  assert.match(text, /grpcurl -plaintext localhost:8081 list/);
});

test("every README example runs as written", async (t) => {
  for (const block of examples()) {
    // grpcurl is a separate Go binary; its lines are documentation only.
    let script = block
      .split("\n")
      .filter((line) => !line.startsWith("grpcurl"))
      .join("\n");
    if (script.trim() === "") continue;
    script = script.replace(
      /localhost:(80\d\d)/g,
      (_, port: string) => `localhost:${ports.get(port)}`,
    );
    // A watch streams until stopped; give it two seconds, as a person would press Ctrl-C.
    const streaming = script.includes("WatchUsers");
    if (streaming) script = script.replace("npx buf curl", "timeout 2 npx buf curl");
    await t.test(block.split("\n")[0] ?? "", async () => {
      const result = await run("bash", ["-euo", "pipefail", "-c", script], {
        cwd: root,
        env: {
          ...process.env,
          PATH: `${path.join(root, "node_modules", ".bin")}:${process.env.PATH}`,
        },
      }).catch((error: { code?: number; stdout?: string; stderr?: string }) => {
        // `timeout` ends the watch with status 124: that is the expected way out of a stream.
        if (streaming && error.code === 124) return { stdout: error.stdout ?? "", stderr: "" };
        throw new Error(
          `example failed (${error.code}):\n${script}\n${error.stdout}\n${error.stderr}`,
        );
      });
      const expectsError = script.includes('"name": ""');
      if (expectsError) {
        assert.match(result.stdout, /"code":"invalid_argument"/);
      } else {
        assert.doesNotMatch(
          result.stdout,
          /"code":\s*"/,
          `an example answered with an error:\n${result.stdout}`,
        );
      }
      if (streaming) assert.match(result.stdout, /"revision"/);
    });
  }
});
