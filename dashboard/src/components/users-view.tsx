"use client";

import { type User, UserStatus } from "@shop/api/shop/user/v1/user_pb";
import { useRouter } from "next/navigation";
import { formatTime } from "../lib/format.ts";
import { ActivityFeed } from "./activity-feed.tsx";
import { CreateUserForm } from "./create-user-form.tsx";
import { Pager } from "./pager.tsx";
import {
  useCollection,
  useIsAdmin,
  useLivePage,
  usePageSearch,
  useSession,
  useShop,
} from "./shop-provider.tsx";
import { StreamBadge, StreamNotice } from "./stream-status.tsx";

const pageSize = 50;

/**
 * The users page: one page of users at a time, newest first, listed by the service (which also
 * finds them by name or email) and kept live by WatchUsers; for the admin, a form to add one and,
 * on each row, a way to view the shop as that customer.
 */
export function UsersView() {
  const shop = useShop();
  const { session, view } = useSession();
  const router = useRouter();
  const changes = useCollection(shop.userList);
  const { page, view: shown } = useLivePage(shop.userPages, shop.userList, { query: "" }, pageSize);
  const [query, setQuery] = usePageSearch(page);
  // Creating users and acting for others is the admin's (or anyone's, when sign-in is off).
  const admin = useIsAdmin();
  const viewAs =
    view.status === "signed-in" && admin
      ? (user: User) => {
          router.push("/orders");
          void session.signIn({ role: "customer", userId: user.id });
        }
      : undefined;
  const listed = shown.total !== undefined;
  const searching = shown.filter.query !== "";
  return (
    <div className="page">
      <div className="page-title">
        <h1>Users</h1>
        <StreamBadge name="users" state={changes} />
      </div>
      <div className="layout-side">
        <div className="stack">
          {admin ? <CreateUserForm /> : <p className="card muted">Only the admin creates users.</p>}
          <ActivityFeed
            title="Recent user changes"
            entries={changes.activity}
            describe={(entry) => `${entry.item.name} <${entry.item.email}>`}
          />
        </div>
        <section className="card" aria-labelledby="users-table-title">
          <div className="card-title">
            <h2 id="users-table-title">{searching ? "Users found" : "All users"}</h2>
            <span className="muted" data-count="users">
              {listed ? `${shown.total} ${searching ? "found" : "in total"}` : ""}
            </span>
          </div>
          <div className="field">
            <label htmlFor="users-search">Search users</label>
            <input
              id="users-search"
              type="search"
              value={query}
              maxLength={200}
              placeholder="A part of a name or an email"
              onChange={(event) => setQuery(event.target.value)}
            />
          </div>
          <StreamNotice
            service="users"
            url={shop.urls.users}
            state={changes}
            hasData={listed}
            onRetry={shop.userList.retryNow}
          />
          {!listed && !shown.error ? (
            <p className="empty">Loading users…</p>
          ) : shown.rows.length === 0 && !shown.loading ? (
            <p className="empty">
              {searching
                ? `No user's name or email contains "${shown.filter.query}".`
                : "No users yet. Create the first one with the form."}
            </p>
          ) : (
            <div className="table-scroll" aria-busy={shown.loading}>
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
                  {shown.rows.map((user) => (
                    <UserRow
                      key={user.id}
                      user={user}
                      fresh={shown.highlighted.has(user.id)}
                      viewAs={viewAs}
                    />
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager page={page} view={shown} noun="users" pageSize={pageSize} />
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
