import { HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";
import type { ValueView } from "./live-value.ts";

/**
 * A service's health as the pages show it: its grpc.health.v1 status, CHECKING until the watch
 * answers, UNREACHABLE while the watch is down.
 */
export function healthText(view: ValueView<HealthCheckResponse_ServingStatus>): string {
  if (view.status === "connecting") return "CHECKING";
  if (view.status !== "live" || view.value === undefined) return "UNREACHABLE";
  return HealthCheckResponse_ServingStatus[view.value] ?? "UNKNOWN";
}
