"use client";

import { type FormEvent, useState } from "react";
import { describeError, formatError } from "../lib/errors.ts";
import { isEmpty, type Problems, validateNewUser } from "../lib/validation.ts";
import { useShop } from "./shop-provider.tsx";

type Outcome = { ok: true; text: string } | { ok: false; text: string };

/** CreateUser from the page: checked in the browser first, the service's error shown in words. */
export function CreateUserForm() {
  const shop = useShop();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [problems, setProblems] = useState<Problems<"name" | "email">>({});
  const [outcome, setOutcome] = useState<Outcome>();
  const [pending, setPending] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const found = validateNewUser({ name, email });
    setProblems(found);
    setOutcome(undefined);
    if (!isEmpty(found)) return;
    setPending(true);
    try {
      const { user } = await shop.users.createUser({ name: name.trim(), email: email.trim() });
      setOutcome({ ok: true, text: `Created ${user?.name ?? "the user"} (${user?.email ?? ""}).` });
      setName("");
      setEmail("");
    } catch (error) {
      setOutcome({
        ok: false,
        text: `Could not create the user: ${formatError(describeError(error))}`,
      });
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="card form" onSubmit={submit} noValidate aria-labelledby="create-user-title">
      <h2 id="create-user-title">Create a user</h2>
      <div className="field">
        <label htmlFor="new-user-name">Name</label>
        <input
          id="new-user-name"
          name="name"
          autoComplete="off"
          value={name}
          onChange={(event) => setName(event.target.value)}
          aria-invalid={problems.name ? true : undefined}
          aria-describedby={problems.name ? "new-user-name-problem" : undefined}
        />
        {problems.name && (
          <p className="problem" id="new-user-name-problem">
            {problems.name}
          </p>
        )}
      </div>
      <div className="field">
        <label htmlFor="new-user-email">Email</label>
        <input
          id="new-user-email"
          name="email"
          type="email"
          autoComplete="off"
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          aria-invalid={problems.email ? true : undefined}
          aria-describedby={problems.email ? "new-user-email-problem" : undefined}
        />
        {problems.email && (
          <p className="problem" id="new-user-email-problem">
            {problems.email}
          </p>
        )}
      </div>
      <button type="submit" disabled={pending}>
        {pending ? "Creating…" : "Create user"}
      </button>
      <p
        className={outcome ? (outcome.ok ? "outcome ok" : "outcome error") : "outcome"}
        role="status"
        data-outcome="create-user"
      >
        {outcome?.text}
      </p>
    </form>
  );
}
