import type { Metadata } from "next";
import { UsersView } from "../../components/users-view.tsx";

export const metadata: Metadata = { title: "Users" };

export default function UsersPage() {
  return <UsersView />;
}
