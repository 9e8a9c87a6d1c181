"use client";

import { type FormEvent, type ReactNode, useState } from "react";
import { isUserId } from "../lib/validation.ts";
import { useSession } from "./shop-provider.tsx";

/**
 * Shows the page once someone is signed in (or sign-in is off); until then, the sign-in screen,
 * so that a page never shows the services' refusals of a caller without a token.
 */
export function SessionGate({ children }: { children: ReactNode }) {
  const { view } = useSession();
  if (view.status === "off" || view.status === "signed-in") return children;
  if (view.status === "restoring" || view.status === "signing-in") {
    return (
      <div className="page">
        <p className="notice notice-info" role="status">
          {view.status === "restoring"
            ? "Restoring your session…"
            : view.identity.role === "admin"
              ? "Signing in as admin…"
              : "Signing in as the customer…"}
        </p>
      </div>
    );
  }
  return <SignInView error={view.error} />;
}

/**
 * The local development sign-in: one click for the admin, or a user id to view the shop as that
 * customer. There is no password; the dashboard's server signs a short-lived token.
 */
function SignInView({ error }: { error: string | undefined }) {
  const { session } = useSession();
  const [userId, setUserId] = useState("");
  const [problem, setProblem] = useState<string>();

  function viewAsCustomer(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const id = userId.trim();
    if (!isUserId(id)) {
      setProblem(
        id === ""
          ? "Enter the customer's user id."
          : "Enter a user id like 0b6f2c1e-5d4a-4f8e-9a37-2c1d5e6f7a8b.",
      );
      return;
    }
    setProblem(undefined);
    void session.signIn({ role: "customer", userId: id });
  }

  return (
    <div className="page">
      <section className="card sign-in" aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in</h1>
        <p>
          The services answer signed-in callers only. This is the <strong>local development</strong>{" "}
          sign-in: there is no password, and the dashboard's server signs a short-lived token for
          whoever you choose. A production deployment signs people in through a real identity
          provider instead.
        </p>
        {error && (
          <p className="outcome error" role="alert" data-outcome="sign-in">
            {error}
          </p>
        )}
        <button type="button" onClick={() => session.signIn({ role: "admin" })}>
          Sign in as admin
        </button>
        <form className="form" onSubmit={viewAsCustomer} noValidate aria-labelledby="view-as-title">
          <h2 id="view-as-title">Or view the shop as a customer</h2>
          <p className="muted">
            A customer sees and places only their own orders. The admin can also pick one on the
            Users page.
          </p>
          <div className="field">
            <label htmlFor="sign-in-user-id">Customer's user id</label>
            <input
              id="sign-in-user-id"
              name="userId"
              autoComplete="off"
              spellCheck={false}
              value={userId}
              onChange={(event) => setUserId(event.target.value)}
              aria-invalid={problem ? true : undefined}
              aria-describedby={problem ? "sign-in-user-id-problem" : undefined}
            />
            {problem && (
              <p className="problem" id="sign-in-user-id-problem">
                {problem}
              </p>
            )}
          </div>
          <button type="submit" className="secondary">
            View as this customer
          </button>
        </form>
      </section>
    </div>
  );
}
