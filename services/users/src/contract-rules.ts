// The users domain's rules port over the contract: each check makes the contract's request message
// of a domain value and runs protovalidate on it, so that the domain refuses what the runtime
// refuses on the wire, by the same rules, while the domain itself imports no protobuf.
import { UserStatus } from "@shop/api/shop/user/v1/user_pb";
import {
  CreateUserRequestSchema,
  file_shop_user_v1_user_service,
  UpdateUserRequestSchema,
} from "@shop/api/shop/user/v1/user_service_pb";
import { contractCheck, createContractValidator } from "@shop/mesh/contract-rules";
import type { UserRules } from "./domain/user.ts";
import { statusToProto } from "./transport/convert.ts";

const validator = createContractValidator([file_shop_user_v1_user_service]);

/** The rules of UserService's contract, as the users domain checks them. */
export const userContractRules: UserRules = {
  newUser: contractCheck(validator, CreateUserRequestSchema, (user) => user),
  update: contractCheck(validator, UpdateUserRequestSchema, (update) => ({
    id: update.id,
    version: update.expectedVersion,
    name: update.patch.name,
    email: update.patch.email,
    status: update.statusGiven
      ? update.patch.status === undefined
        ? UserStatus.UNSPECIFIED
        : statusToProto[update.patch.status]
      : undefined,
  })),
};
