"use client";

import { type User, UserStatus } from "@shop/api/shop/user/v1/user_pb";
import { useId } from "react";
import { useLivePage, usePageSearch, useShop, useUser } from "./shop-provider.tsx";

/** How many users the choice offers at once: the newest, or the newest that match the search. */
const choices = 50;

/**
 * A choice of one user among any number: a search by name or email (on the service, ListUsers'
 * query) narrows a list of the newest matching users, kept live by the users' changes. The chosen
 * user stays a choice whatever the search shows. With `fixed`, the choice is that user alone.
 */
export function UserPicker({
  id,
  searchFor,
  value,
  onChange,
  none,
  fixed,
  invalid,
  describedBy,
}: {
  /** The select's id, for the label the caller puts before it. */
  id: string;
  /** What the search is for, in the search's name: "the order's customer". */
  searchFor: string;
  value: string;
  onChange: (userId: string) => void;
  /** The words of the empty choice: "Everyone", "Choose a user…". */
  none: string;
  fixed?: string | undefined;
  invalid?: boolean;
  describedBy?: string | undefined;
}) {
  const shop = useShop();
  const searchId = useId();
  const { page, view } = useLivePage(shop.userPages, shop.userList, { query: "" }, choices);
  const [query, setQuery] = usePageSearch(page);
  const chosen = useUser(value === "" ? undefined : value);
  const options: User[] =
    fixed !== undefined
      ? chosen
        ? [chosen]
        : []
      : chosen && !view.rows.some((user) => user.id === chosen.id)
        ? [chosen, ...view.rows]
        : [...view.rows];
  return (
    <div className="picker">
      {fixed === undefined && (
        <input
          id={searchId}
          type="search"
          className="picker-search"
          aria-label={`Search the users by name or email (${searchFor})`}
          placeholder="Find by name or email"
          value={query}
          maxLength={200}
          onChange={(event) => setQuery(event.target.value)}
        />
      )}
      <select
        id={id}
        value={fixed ?? value}
        disabled={fixed !== undefined}
        onChange={(event) => onChange(event.target.value)}
        aria-invalid={invalid || undefined}
        aria-describedby={describedBy}
      >
        {fixed === undefined && (
          <option value="">{view.total === undefined ? "Loading users…" : none}</option>
        )}
        {fixed !== undefined && !chosen && <option value={fixed}>{fixed}</option>}
        {options.map((user) => (
          <option key={user.id} value={user.id}>
            {user.name} ({user.email}){user.status === UserStatus.ACTIVE ? "" : " – suspended"}
          </option>
        ))}
      </select>
      {fixed === undefined && view.total !== undefined && view.total > view.rows.length && (
        <span className="muted small-text">
          The newest {view.rows.length} of {view.total}; search to find others.
        </span>
      )}
    </div>
  );
}
