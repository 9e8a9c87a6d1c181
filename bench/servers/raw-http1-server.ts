// The HTTP/1.1 limit for Connect JSON: a minimal hand-written node:http handler for
// POST /shop.user.v1.UserService/GetUser with an application/json body. It parses the body with
// JSON.parse, calls the same domain function as our handler, and writes the Connect JSON form of
// the response (camelCase fields, enum names, RFC 3339 timestamps, int64 as a string) with
// JSON.stringify. No schema-driven JSON codec, routing table, interceptors or limits. Served alone
// by raw-http1.ts, and beside the HTTP/2 limit by raw-http2.ts --also-http1.
import * as http from "node:http";
import { UserNotFoundError } from "../../services/users/src/domain/errors.ts";
import { getUser } from "../../services/users/src/domain/get-user.ts";
import type { User } from "../../services/users/src/domain/user.ts";
import { createMemoryUserRepository } from "../lib/fixture.ts";
import { userServicePath } from "../lib/requests.ts";

const users = createMemoryUserRepository();
const getUserPath = userServicePath("GetUser");
const statusName = { active: "USER_STATUS_ACTIVE", suspended: "USER_STATUS_SUSPENDED" } as const;

/** RFC 3339 as protobuf's JSON mapping writes it: fractional seconds only when there are any. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(".000Z", "Z");
}

function toJson(user: User) {
  return {
    user: {
      id: user.id,
      name: user.name,
      email: user.email,
      status: statusName[user.status],
      createTime: rfc3339(user.createTime),
      updateTime: rfc3339(user.updateTime),
      version: String(user.version),
    },
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** The raw HTTP/1.1 server, not listening yet. */
export function createRawHttp1Server(): http.Server {
  return http.createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== getUserPath) {
        send(res, 404, { code: "unimplemented", message: "unimplemented" });
        return;
      }
      let id: unknown;
      try {
        id = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: unknown }).id;
      } catch {
        send(res, 400, { code: "invalid_argument", message: "malformed JSON" });
        return;
      }
      getUser(users, typeof id === "string" ? id : "").then(
        (user) => send(res, 200, toJson(user)),
        (error: unknown) =>
          error instanceof UserNotFoundError
            ? send(res, 404, { code: "not_found", message: error.message })
            : send(res, 500, { code: "internal", message: "internal error" }),
      );
    });
  });
}
