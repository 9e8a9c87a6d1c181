import Link from "next/link";

export default function NotFound() {
  return (
    <div className="page">
      <div className="card">
        <h1>Not found</h1>
        <p>
          There is no such page. Go to the <Link href="/">overview</Link>.
        </p>
      </div>
    </div>
  );
}
