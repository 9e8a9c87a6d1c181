import type { RuleCheck } from "@shop/mesh/rule-violation";
import type { SnapshotPage } from "@shop/mesh/watch";

/** Whether a user may place orders. */
export type UserStatus = "active" | "suspended";

/** A customer of the shop. */
export interface User {
  id: string;
  name: string;
  email: string;
  status: UserStatus;
  createTime: Date;
  updateTime: Date;
  version: bigint;
}

/** What is needed to create a user. */
export interface NewUser {
  name: string;
  email: string;
}

/** The fields an update may change. */
export interface UserPatch {
  name?: string;
  email?: string;
  status?: UserStatus;
}

/** An update as UpdateUser asks for it: the fields it changes, guarded by the version last seen. */
export interface UserUpdate {
  id: string;
  expectedVersion: bigint;
  patch: UserPatch;
  /** True when the status is to change (`patch.status` is then undefined for an unknown one). */
  statusGiven: boolean;
}

/**
 * The contract's rules for what users may be (a port: the service implements it over its
 * contract's `buf.validate` rules, which the runtime also enforces on every request), so that the
 * domain refuses what breaks them also when it is called directly.
 */
export interface UserRules {
  /** The rules a user to create breaks (CreateUser, and each user of BatchCreateUsers). */
  newUser: RuleCheck<NewUser>;
  /** The rules an update breaks: its id, its version and the fields it changes. */
  update: RuleCheck<UserUpdate>;
}

/** One change of one user as the watch reports it. */
export interface UserEvent {
  type: "snapshot" | "created" | "updated" | "deleted";
  user: User;
  revision: bigint;
}

/** A batch of events and the revision the watcher has reached. */
export interface UserEventBatch {
  events: UserEvent[];
  revision: bigint;
}

/** Which users ListUsers lists, in what order, and from where. */
export interface UserListing {
  /** Only users whose name or email contains this text, ignoring case; every user when empty. */
  query: string;
  /** Newest first when true, creation order when false. */
  newestFirst: boolean;
  /** Where the previous page of the same query and order ended; undefined for the first page. */
  cursor: string | undefined;
  limit: number;
}

/** A page of users and the revision it reflects. */
export interface UserPage {
  users: User[];
  nextCursor: string | undefined;
  revision: bigint;
  /** How many users match the query at that revision, on every page. */
  totalSize: number;
}

/** Where users are kept. The store implements it over PostgreSQL; tests use an in-memory one. */
export interface UserRepository {
  /** Inserts all users or none; throws EmailTakenError naming the first taken email. */
  insert(users: readonly NewUser[]): Promise<User[]>;
  get(id: string): Promise<User | undefined>;
  /**
   * The users that match `listing.query` after its cursor, in its order, with how many match in
   * all and the revision of the read (all three from one snapshot).
   */
  list(listing: UserListing): Promise<UserPage>;
  /**
   * Up to `limit` users with ids after `after` (all when undefined), in id order, read in one
   * transaction at `atLeast` or a later revision; `next` is the last id when more may follow.
   */
  snapshotPage(request: {
    after: string | undefined;
    limit: number;
    atLeast: bigint;
  }): Promise<SnapshotPage<User>>;
  /** The changes in (after, upTo] to users with ids up to `through` (in id order), in order. */
  changesThrough(request: {
    after: bigint;
    upTo: bigint;
    through: string;
  }): AsyncIterable<UserEventBatch>;
  /** Applies `patch` if the version is still `expectedVersion`. */
  update(id: string, expectedVersion: bigint, patch: UserPatch): Promise<User>;
  /** Changes after `after`, in revision order, until `signal` aborts. */
  changes(after: bigint, signal: AbortSignal): AsyncIterable<UserEventBatch>;
}

/**
 * The users as the use cases that take input need them: where they are kept, and the contract's
 * rules for what they may be. The store and the tests' repository carry the contract's rules
 * themselves, so that every caller of those use cases gets the same refusals.
 */
export interface Users extends UserRepository {
  /** The rules of the contract that what is stored must keep. */
  readonly rules: UserRules;
}
