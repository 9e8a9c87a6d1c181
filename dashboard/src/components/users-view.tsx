"use client";

import { type User, UserStatus } from "@shop/api/shop/user/v1/user_pb";
import { useRouter } from "next/navigation";
import { useMemo } from "react";
import { formatTime, timestampMs } from "../lib/format.ts";
import { ActivityFeed } from "./activity-feed.tsx";
import { CreateUserForm } from "./create-user-form.tsx";
import { useCollection, useSession, useShop } from "./shop-provider.tsx";
import { StreamBadge, StreamNotice } from "./stream-status.tsx";

const shownRows = 200;

/**
 * The users page: every user, live from WatchUsers, newest first; for the admin, a form to add one
 * and, on each row, a way to view the shop as that customer.
 */
export function UsersView() {
  const shop = useShop();
  const { session, view } = useSession();
  const router = useRouter();
  const users = useCollection(shop.userList);
  // Creating users and acting for others is the admin's (or anyone's, when sign-in is off).
  const admin = view.status === "off" || shop.identity?.role === "admin";
  const viewAs =
    view.status === "signed-in" && admin
      ? (user: User) => {
          router.push("/orders");
          void session.signIn({ role: "customer", userId: user.id });
        }
      : undefined;
  const rows = useMemo(
    () =>
      [...users.items.values()].sort(
        (a, b) => timestampMs(b.createTime) - timestampMs(a.createTime) || b.id.localeCompare(a.id),
      ),
    [users.items],
  );
  return (
    <div className="page">
      <div className="page-title">
        <h1>Users</h1>
        <StreamBadge name="users" state={users} />
      </div>
      <div className="layout-side">
        <div className="stack">
          {admin ? <CreateUserForm /> : <p className="card muted">Only the admin creates users.</p>}
          <ActivityFeed
            title="Recent user changes"
            entries={users.activity}
            describe={(entry) => `${entry.item.name} <${entry.item.email}>`}
          />
        </div>
        <section className="card" aria-labelledby="users-table-title">
          <div className="card-title">
            <h2 id="users-table-title">All users</h2>
            <span className="muted" data-count="users">
              {users.loaded ? `${users.items.size} in total` : ""}
            </span>
          </div>
          <StreamNotice
            service="users"
            url={shop.urls.users}
            state={users}
            hasData={users.loaded}
            onRetry={shop.userList.retryNow}
          />
          {!users.loaded ? (
            <p className="empty">Loading users…</p>
          ) : rows.length === 0 ? (
            <p className="empty">No users yet. Create the first one with the form.</p>
          ) : (
            <div className="table-scroll">
              <table>
                <caption className="visually-hidden">Users, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Email</th>
                    <th scope="col">Status</th>
                    <th scope="col" className="optional">
                      Created
                    </th>
                    {viewAs && (
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody>
                  {rows.slice(0, shownRows).map((user) => (
                    <UserRow
                      key={user.id}
                      user={user}
                      fresh={users.highlighted.has(user.id)}
                      viewAs={viewAs}
                    />
                  ))}
                </tbody>
              </table>
              {rows.length > shownRows && (
                <p className="muted">
                  Showing the newest {shownRows} of {rows.length} users.
                </p>
              )}
            </div>
          )}
        </section>
      </div>
    </div>
  );
}

function UserRow({
  user,
  fresh,
  viewAs,
}: {
  user: User;
  fresh: boolean;
  viewAs: ((user: User) => void) | undefined;
}) {
  return (
    <tr
      data-id={user.id}
      data-highlighted={fresh || undefined}
      className={fresh ? "fresh" : undefined}
    >
      <td className="name">{user.name}</td>
      <td className="email">{user.email}</td>
      <td>
        {user.status === UserStatus.ACTIVE ? (
          <span className="tag tag-ok">active</span>
        ) : (
          <span className="tag tag-warn">suspended</span>
        )}
      </td>
      <td className="optional muted">{formatTime(user.createTime)}</td>
      {viewAs && (
        <td>
          <button
            type="button"
            className="secondary small"
            aria-label={`View as ${user.name}`}
            onClick={() => viewAs(user)}
          >
            View as
          </button>
        </td>
      )}
    </tr>
  );
}
