// The @grpc/grpc-js peer: UserService from the same .proto files, loaded by @grpc/proto-loader (the
// way a grpc-js user would), calling the same domain functions as our handlers.
//   --store=memory     GetUser from the in-memory fixture user
//   --store=postgres   GetUser and WatchUsers over the users service's own PostgreSQL store and a
//                      change feed of its own (createChangeFeed), like a users replica
// Errors are mapped to status codes as our transport maps them; nothing is traced or counted.
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { convertOnce } from "@shop/mesh/watch";
import { UserNotFoundError } from "../../services/users/src/domain/errors.ts";
import { getUser } from "../../services/users/src/domain/get-user.ts";
import type { User, UserEvent, UserRepository } from "../../services/users/src/domain/user.ts";
import { watchUsers } from "../../services/users/src/domain/watch-users.ts";
import { createMemoryUserRepository } from "../lib/fixture.ts";
import { argument, reportFailure, reportReady } from "./ipc.ts";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/** How grpc-js users usually load protos: field names as written, int64 as strings. */
const loaderOptions: protoLoader.Options = {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

interface GrpcTimestamp {
  seconds: string;
  nanos: number;
}

function timestamp(date: Date): GrpcTimestamp {
  const ms = date.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

const statusName = { active: "USER_STATUS_ACTIVE", suspended: "USER_STATUS_SUSPENDED" } as const;
const eventName = {
  snapshot: "EVENT_TYPE_SNAPSHOT",
  created: "EVENT_TYPE_CREATED",
  updated: "EVENT_TYPE_UPDATED",
  deleted: "EVENT_TYPE_DELETED",
} as const;

function toWire(user: User) {
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    status: statusName[user.status],
    create_time: timestamp(user.createTime),
    update_time: timestamp(user.updateTime),
    version: String(user.version),
  };
}

function eventToWire(event: UserEvent) {
  return {
    type: eventName[event.type],
    user: toWire(event.user),
    revision: String(event.revision),
  };
}

function toStatus(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof UserNotFoundError) {
    return { code: grpc.status.NOT_FOUND, details: error.message };
  }
  // The change feed throws ConnectErrors (out_of_range); their codes are gRPC's.
  const coded = error as { name?: string; code?: unknown; rawMessage?: string };
  if (coded.name === "ConnectError" && typeof coded.code === "number") {
    return { code: coded.code as grpc.status, details: coded.rawMessage ?? "" };
  }
  return { code: grpc.status.INTERNAL, details: "internal error" };
}

type GetUserCall = grpc.ServerUnaryCall<{ id: string }, unknown>;
type WatchUsersCall = grpc.ServerWritableStream<{ start_revision: string }, unknown>;

function handlers(users: UserRepository): grpc.UntypedServiceImplementation {
  // As our handler does: every watcher of a change gets the same converted event (protobufjs
  // still encodes it once per stream, as connect does).
  const sharedWire = convertOnce(eventToWire);
  return {
    GetUser(call: GetUserCall, callback: grpc.sendUnaryData<unknown>) {
      getUser(users, call.request.id).then(
        (user) => callback(null, { user: toWire(user) }),
        (error: unknown) => callback(toStatus(error)),
      );
    },
    WatchUsers(call: WatchUsersCall) {
      const abort = new AbortController();
      call.on("cancelled", () => abort.abort());
      (async () => {
        const batches = watchUsers(users, {
          startRevision: BigInt(call.request.start_revision || "0"),
          signal: abort.signal,
        });
        for await (const batch of batches) {
          const flowing = call.write({
            events: batch.events.map(sharedWire),
            revision: String(batch.revision),
          });
          if (!flowing && !abort.signal.aborted) await once(call, "drain");
        }
        call.end();
      })().catch((error: unknown) => {
        if (!abort.signal.aborted) call.emit("error", toStatus(error));
      });
    },
  };
}

try {
  const store = argument("store", "memory");
  const definition = protoLoader.loadSync(
    path.join(protoDir, "shop/user/v1/user_service.proto"),
    loaderOptions,
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    shop: { user: { v1: { UserService: grpc.ServiceClientConstructor } } };
  };
  let users: UserRepository;
  let close = async () => {};
  if (store === "postgres") {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error("--store=postgres needs DATABASE_URL");
    // Loaded only here, so that the in-memory peer's memory at rest holds grpc-js and nothing else.
    const { createChangeFeed, createLogger, openDatabase } = await import("@shop/mesh");
    const { tables } = await import("../../services/users/src/store/schema.ts");
    const { createUserStore } = await import("../../services/users/src/store/user-store.ts");
    const database = openDatabase({
      url,
      schema: "users",
      tables,
      applicationName: "bench-grpc-js",
    });
    const feed = await createChangeFeed({
      sql: database.sql,
      schema: "users",
      logger: createLogger("grpc-js-peer", "warn"),
    });
    users = createUserStore(database, feed);
    close = async () => {
      await feed.close();
      await database.close();
    };
  } else {
    users = createMemoryUserRepository();
  }
  const server = new grpc.Server();
  server.addService(loaded.shop.user.v1.UserService.service, handlers(users));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${process.env.PORT ?? "0"}`,
      grpc.ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  );
  reportReady(port, async () => {
    server.forceShutdown();
    await close();
  });
} catch (error) {
  reportFailure(error);
}
