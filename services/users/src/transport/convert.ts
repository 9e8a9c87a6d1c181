import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  EventType,
  type UserEventSchema,
  type UserSchema,
  UserStatus,
} from "@shop/api/shop/user/v1/user_pb";
import type { UserStatus as DomainStatus, User, UserEvent } from "../domain/user.ts";

/** The proto status of each domain status. */
export const statusToProto: Record<DomainStatus, UserStatus> = {
  active: UserStatus.ACTIVE,
  suspended: UserStatus.SUSPENDED,
};

/** The proto status of a domain status. */
export function statusFromProto(status: UserStatus): DomainStatus | undefined {
  if (status === UserStatus.ACTIVE) return "active";
  if (status === UserStatus.SUSPENDED) return "suspended";
  return undefined;
}

/** The wire form of a user. */
export function userToProto(user: User): MessageInitShape<typeof UserSchema> {
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    status: statusToProto[user.status],
    createTime: timestampFromDate(user.createTime),
    updateTime: timestampFromDate(user.updateTime),
    version: user.version,
  };
}

const eventTypeToProto: Record<UserEvent["type"], EventType> = {
  snapshot: EventType.SNAPSHOT,
  created: EventType.CREATED,
  updated: EventType.UPDATED,
  deleted: EventType.DELETED,
};

/** The wire form of a user event. */
export function eventToProto(event: UserEvent): MessageInitShape<typeof UserEventSchema> {
  return {
    type: eventTypeToProto[event.type],
    user: userToProto(event.user),
    revision: event.revision,
  };
}
