import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { UserEventSchema } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { decodePageToken, encodePageToken, mapDomainErrors, pageSizeOf } from "@shop/mesh";
import { convertBatchesOnce, convertOnce, type EventBatch, mapStream } from "@shop/mesh/watch";
import { userContractRules } from "../contract-rules.ts";
import { batchCreateUsers } from "../domain/batch-create-users.ts";
import { createUser } from "../domain/create-user.ts";
import { getUser } from "../domain/get-user.ts";
import { listUsers } from "../domain/list-users.ts";
import { updateUser } from "../domain/update-user.ts";
import type { UserEvent, UserRepository, UserRules, Users } from "../domain/user.ts";
import { watchUsers } from "../domain/watch-users.ts";
import { eventToProto, statusFromProto, userToProto } from "./convert.ts";
import { toConnectError } from "./errors.ts";

/**
 * Registers UserService: decodes each request, calls the domain, maps its errors to codes. The
 * domain checks its input by `rules` (the contract's), also over a repository that has none.
 */
export function userRoutes(repository: UserRepository, rules: UserRules = userContractRules) {
  const users: Users = { ...repository, rules };
  // Every watcher of a change gets the same message object, converted once (see convertOnce).
  const sharedProto = convertOnce((event: UserEvent) =>
    create(UserEventSchema, eventToProto(event)),
  );
  // Watches at the same place get the same batch, and so the same response: encoded once for all
  // of them on the gRPC path.
  const sharedResponse = convertBatchesOnce(
    (batch: EventBatch<UserEvent>) => batch.events,
    sharedProto,
  );
  return (router: ConnectRouter) =>
    router.service(
      UserService,
      mapDomainErrors<ServiceImpl<typeof UserService>>(
        {
          async createUser(req) {
            return { user: userToProto(await createUser(users, req)) };
          },
          async getUser(req) {
            return { user: userToProto(await getUser(users, req.id)) };
          },
          async listUsers(req) {
            const limit = pageSizeOf(req.pageSize);
            const filters = { query: req.query, newest_first: req.newestFirst };
            const cursor = decodePageToken(
              req.pageToken,
              (after) => /^\d{1,18}$/.test(after),
              filters,
            );
            const page = await listUsers(users, {
              query: req.query,
              newestFirst: req.newestFirst,
              cursor,
              limit,
            });
            return {
              users: page.users.map(userToProto),
              nextPageToken:
                page.nextCursor === undefined ? "" : encodePageToken(page.nextCursor, filters),
              revision: page.revision,
              totalSize: page.totalSize,
            };
          },
          async updateUser(req) {
            const user = await updateUser(users, {
              id: req.id,
              expectedVersion: req.version,
              patch: {
                name: req.name,
                email: req.email,
                status: req.status === undefined ? undefined : statusFromProto(req.status),
              },
              statusGiven: req.status !== undefined,
            });
            return { user: userToProto(user) };
          },
          watchUsers(req, context) {
            const batches = watchUsers(users, {
              startRevision: req.startRevision,
              signal: context.signal,
            });
            return mapStream(batches, sharedResponse);
          },
          async batchCreateUsers(requests) {
            return { users: (await batchCreateUsers(users, requests)).map(userToProto) };
          },
        },
        toConnectError,
      ),
    );
}
