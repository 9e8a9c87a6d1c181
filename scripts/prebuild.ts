// Run by `npm install` (postinstall, after `buf generate`): builds what `npm start` serves, the
// service bundles and the dashboard's production build, so that the first `npm start` after an
// install starts instead of building (the dashboard's `next build` takes ~20 s on 2 cores). Each is
// built only when missing or out of date, as `npm start` would. A failing dashboard build does not
// fail the install: `npm start` builds it again and shows the error where it matters.
// `SHOP_SKIP_PREBUILD=1` skips both (images that build what they need themselves).
import { buildServices } from "./build-services.ts";
import { ensureDashboardBuild } from "./dashboard.ts";

const say = (line: string) => console.log(`[prebuild] ${line}`);

if (process.env.SHOP_SKIP_PREBUILD === "1") {
  say("skipped (SHOP_SKIP_PREBUILD=1)");
} else {
  if (await buildServices()) say("service bundles built");
  try {
    await ensureDashboardBuild(say);
  } catch (error) {
    say(`the dashboard did not build; npm start will try again:\n${(error as Error).message}`);
  }
}
