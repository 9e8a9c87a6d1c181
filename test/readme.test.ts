// The README's examples are run exactly as written, against the three services started on free
// ports (the default ports in the text are rewritten to them) with authentication on, as npm start
// runs them: each example runs after the README's token step, in a fresh shell. A command that
// fails, or that an example shows succeeding but that answers with an error, turns this red.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type AuthMesh, startAuthMesh } from "./support/auth-mesh.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);

function shellBlocks(): string[] {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
}

/** The shell blocks of the README that call running services (not install, start or test). */
function examples(): string[] {
  return shellBlocks().filter((block) => /localhost:80\d\d/.test(block));
}

/** The README's step that gets a token for the examples. */
function tokenStep(): string {
  const step = shellBlocks().find((block) => block.includes("npm run -s token"));
  assert.ok(step, "the README shows how to get a token");
  return step;
}

const dataDir = mkdtempSync(path.join(tmpdir(), "readme-"));
let mesh: AuthMesh;
const ports = new Map<string, number>();

before(async () => {
  // The keys where `npm start` makes them (SHOP_DATA_DIR/auth), for `npm run token` to find.
  mesh = await startAuthMesh({}, { keyDir: path.join(dataDir, "auth") });
  ports.set("8081", mesh.users.server.port);
  ports.set("8082", mesh.orders.server.port);
  ports.set("8083", mesh.inventory.server.port);
});

after(async () => {
  await mesh.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("the README has examples for buf curl over three protocols, curl POST and GET, and streaming", () => {
  const text = examples().join("\n");
  for (const protocol of ["connect", "grpc", "grpcweb"]) {
    assert.match(text, new RegExp(`buf curl .*--protocol ${protocol} `));
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
    script = `${tokenStep()}\n${script}`;
    script = script.replace(
      /localhost:(80\d\d)/g,
      (_, port: string) => `localhost:${ports.get(port)}`,
    );
    // A watch streams until stopped: it is stopped once its first response is out, as a person
    // would press Ctrl-C (on a busy machine `npx buf curl` alone can take seconds to start).
    const streaming = script.includes("WatchUsers") || script.includes("TapService/Tap");
    const env = {
      ...process.env,
      SHOP_DATA_DIR: dataDir,
      PATH: `${path.join(root, "node_modules", ".bin")}:${process.env.PATH}`,
    };
    await t.test(block.split("\n")[0] ?? "", async () => {
      const result = streaming
        ? await untilOutput(
            script,
            env,
            script.includes("WatchUsers") ? /"revision"/ : /\{/,
            60_000,
          )
        : await run("bash", ["-euo", "pipefail", "-c", script], { cwd: root, env }).catch(
            (error: { code?: number; stdout?: string; stderr?: string }) => {
              throw new Error(
                `example failed (${error.code}):\n${script}\n${error.stdout}\n${error.stderr}`,
              );
            },
          );
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
      if (script.includes("WatchUsers")) assert.match(result.stdout, /"revision"/);
    });
  }
});

/** Runs `script` until its output matches `pattern`, then stops it (its process group). */
function untilOutput(
  script: string,
  env: NodeJS.ProcessEnv,
  pattern: RegExp,
  timeoutMs: number,
): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], {
      cwd: root,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const stop = () => {
      clearTimeout(timer);
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGINT");
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      stop();
      reject(
        new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (pattern.test(stdout)) {
        stop();
        resolve({ stdout });
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("exit", (code) => {
      if (pattern.test(stdout)) return;
      clearTimeout(timer);
      reject(new Error(`example ended (${code}) before its first response:\n${stdout}\n${stderr}`));
    });
  });
}

test("without the README's token step the same examples are refused with unauthenticated", async () => {
  const block = examples().find((example) => example.includes("CreateUser"));
  assert.ok(block);
  const script = `TOKEN=not-a-token\n${block.replace(
    /localhost:(80\d\d)/g,
    (_, port: string) => `localhost:${ports.get(port)}`,
  )}`;
  const { stdout } = await run("bash", ["-eu", "-c", script], { cwd: root });
  assert.match(stdout, /"code":"unauthenticated"/);
});
