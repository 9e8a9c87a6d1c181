// GET /api/explorer: what each service the dashboard knows serves, found at runtime over gRPC
// server reflection (the shop's three services and EXPLORER_URLS): the services' names and the
// FileDescriptorProtos describing them (base64), from which the explorer page builds its forms and
// calls. A service that cannot be reached is listed with the reason. The caller's authorization
// header is passed on, for services that do not leave reflection open.
import { readConfig } from "../../../config.ts";
import type { ExplorerTarget } from "../../../lib/explorer.ts";
import { describeService } from "../../../lib/reflection.ts";
import { serviceNames } from "../../../lib/service-urls.ts";

const noStore = { "cache-control": "no-store" };
const reflectionTimeoutMs = 5_000;

export async function GET(request: Request): Promise<Response> {
  const config = readConfig();
  const targets = [
    ...serviceNames.map((name) => ({ name, url: config.urls[name] })),
    ...config.explorerUrls.map((url) => ({ name: new URL(url).host, url })),
  ];
  const authorization = request.headers.get("authorization") ?? undefined;
  const described = await Promise.all(
    targets.map(async (target): Promise<ExplorerTarget> => {
      try {
        const { services, files } = await describeService(target.url, {
          authorization,
          timeoutMs: reflectionTimeoutMs,
        });
        const encoded = files.map((bytes) => Buffer.from(bytes).toString("base64"));
        return { ...target, services, files: encoded };
      } catch (error) {
        return { ...target, error: error instanceof Error ? error.message : String(error) };
      }
    }),
  );
  return Response.json({ targets: described }, { headers: noStore });
}
