import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { UserStatus } from "@shop/api/shop/user/v1/user_pb";
import type { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { UserDirectory } from "../domain/order.ts";
import { upstreamFailure } from "./upstream-errors.ts";

/** Looks users up in the users service. */
export function createUserDirectory(client: Client<typeof UserService>): UserDirectory {
  return {
    async statusOf(userId) {
      try {
        const { user } = await client.getUser({ id: userId });
        if (!user) return undefined;
        return user.status === UserStatus.ACTIVE ? "active" : "suspended";
      } catch (error) {
        if (error instanceof ConnectError && error.code === Code.NotFound) return undefined;
        throw upstreamFailure("users", error) ?? error;
      }
    },
  };
}
