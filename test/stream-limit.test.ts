// The cap on open streams (watches) per client: a client is its verified caller when
// authentication is on, its address when it is off. One stream over the cap is refused with
// `resource_exhausted`; closing one makes room; other clients are not affected.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService } from "@shop/mesh";
import {
  createTestDatabase,
  protocols,
  recordStream,
  type StreamRecording,
  startTestService,
  waitFor,
} from "@shop/testing";
import { usersService } from "../services/users/src/app.ts";
import { type AuthMesh, startAuthMesh } from "./support/auth-mesh.ts";

const transport = (url: string) => {
  const grpc = protocols.find((protocol) => protocol.name === "grpc");
  assert.ok(grpc);
  return grpc.transport(url);
};

/** Opens a watch and waits for its first response, or for it to fail. */
async function openWatch(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const client = createClient(UserService, transport(url));
  const watch = recordStream(client.watchUsers({}, { headers, signal: abort.signal }));
  await waitFor(() => watch.messages.length > 0 || watch.done, { message: "the watch answers" });
  return { watch, close: () => abort.abort() };
}

const refusal = (watch: StreamRecording<unknown>) =>
  watch.error instanceof ConnectError ? Code[watch.error.code] : String(watch.error);

let mesh: AuthMesh | undefined;
let plain: RunningService | undefined;
after(async () => {
  await mesh?.stop();
  await plain?.stop(100);
});

test("with authentication on, each caller may hold MAX_WATCHES_PER_CLIENT streams; one more is resource_exhausted", async () => {
  mesh = await startAuthMesh({ MAX_WATCHES_PER_CLIENT: "3" });
  const url = mesh.users.server.url;
  const ann = { authorization: `Bearer ${await mesh.token({ subject: "ann", roles: [] })}` };
  const bob = { authorization: `Bearer ${await mesh.token({ subject: "bob", roles: [] })}` };
  const open = [await openWatch(url, ann), await openWatch(url, ann), await openWatch(url, ann)];
  for (const { watch } of open) assert.equal(watch.done, false);
  const fourth = await openWatch(url, ann);
  await fourth.watch.ended;
  assert.equal(refusal(fourth.watch), "ResourceExhausted");
  assert.match((fourth.watch.error as ConnectError).rawMessage, /at most 3 per client/);
  // Another caller from the same address is another client.
  const other = await openWatch(url, bob);
  assert.equal(other.watch.done, false, "bob's watch is open");
  // Closing one makes room for one.
  open[0]?.close();
  await open[0]?.watch.ended;
  const again = await waitFor(
    async () => {
      const attempt = await openWatch(url, ann);
      return attempt.watch.done ? undefined : attempt;
    },
    { message: "a watch opens again once one closed" },
  );
  for (const stream of [...open, other, again]) stream.close();
});

test("with authentication off, the client is its address", async () => {
  const database = await createTestDatabase();
  plain = await startTestService(usersService, database.url, { MAX_WATCHES_PER_CLIENT: "2" });
  const url = plain.server.url;
  const open = [await openWatch(url), await openWatch(url)];
  const third = await openWatch(url);
  await third.watch.ended;
  assert.equal(refusal(third.watch), "ResourceExhausted");
  // Unary calls are not streams: they still work.
  const client = createClient(UserService, transport(url));
  await client.listUsers({});
  for (const stream of open) stream.close();
  await plain.stop(100);
  plain = undefined;
  await database.drop();
});
