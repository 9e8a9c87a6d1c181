/** The three services of the shop. */
export type ServiceName = "users" | "orders" | "inventory";

/** The services in the order the page lists them. */
export const serviceNames: readonly ServiceName[] = ["users", "orders", "inventory"];

/** Where the browser reaches each service: runtime configuration, passed down from the server. */
export type ServiceUrls = Record<ServiceName, string>;
