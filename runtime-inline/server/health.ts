import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { HandlerContext } from "./handler.ts";

// The gRPC health checking protocol (grpc.health.v1.Health), as grpc-go's
// health server implements it. Only the file generated for that service
// reaches this module.

/**
 * A service's health, as `grpc.health.v1.HealthCheckResponse.ServingStatus`
 * names it. `SERVICE_UNKNOWN` is what `Watch` sends for a service that has
 * no status.
 * @public
 */
export type HealthServingStatus =
  "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** The enum's numbers: what the messages carry. */
type HealthStatusNumber = 0 | 1 | 2 | 3;

// Indexed by number.
const healthStatusNames: readonly HealthServingStatus[] = [
  "UNKNOWN",
  "SERVING",
  "NOT_SERVING",
  "SERVICE_UNKNOWN",
];

// grpc-go's limit: List answers resource_exhausted past it, as the
// protocol allows, rather than a response without bound.
const healthListMax = 100;

/** A status given by name or by its enum number; anything else is a TypeError. */
function healthStatusNumber(
  status: HealthServingStatus | HealthStatusNumber,
): HealthStatusNumber {
  const number =
    typeof status === "number" ? status : healthStatusNames.indexOf(status);
  // The value may come from JavaScript or configuration, unchecked by tsc.
  if (!Number.isInteger(number) || number < 0 || number > 3) {
    throw new TypeError(
      `not a health status: ${String(status)} (expected ${healthStatusNames.join(", ")} or 0 to 3)`,
    );
  }
  return number as HealthStatusNumber;
}

/**
 * The serving status of each service of a server, and of the server as a
 * whole (the service name ""; SERVING unless set otherwise), which the
 * health service answers with. Statuses are set by name
 * (`status.set("acme.v1.Billing", "NOT_SERVING")`, or by the enum's number);
 * `Watch` calls of a service get each change as it is made.
 *
 * `shutdown()` sets every status to NOT_SERVING and ignores `set` until
 * `resume()`, which sets every status to SERVING (grpc-go's Shutdown and
 * Resume): call it as a graceful shutdown starts, so that load balancers
 * and Kubernetes stop sending calls before the server stops taking them.
 * @public
 */
export class HealthStatus {
  readonly #statuses = new Map<string, HealthStatusNumber>([["", 1]]);
  // Per service, so that a change wakes only the watches of its service.
  readonly #listeners = new Map<
    string,
    Set<(status: HealthServingStatus) => void>
  >();
  #shutdown = false;

  /**
   * @param statuses The statuses to start with, by service name; "" (the
   * server) is SERVING unless given.
   */
  constructor(statuses?: {
    readonly [service: string]: HealthServingStatus | HealthStatusNumber;
  }) {
    if (statuses !== undefined) {
      for (const [service, status] of Object.entries(statuses)) {
        this.#statuses.set(service, healthStatusNumber(status));
      }
    }
  }

  /**
   * Sets a service's status ("" for the server's); ignored after
   * `shutdown()` until `resume()`. Listeners of the service are called
   * when it changes, at once; what one throws is thrown here once the
   * others have been called.
   */
  set(service: string, status: HealthServingStatus | HealthStatusNumber): void {
    const number = healthStatusNumber(status);
    if (this.#shutdown) return;
    this.#update([service], number);
  }

  /** A service's status, or undefined for a service that has none. */
  get(service: string): HealthServingStatus | undefined {
    const number = this.#statuses.get(service);
    return number === undefined ? undefined : healthStatusNames[number];
  }

  /** Every status, by service name, the server's ("") included. */
  list(): { [service: string]: HealthServingStatus } {
    // fromEntries defines own properties: a service named "__proto__" is
    // one more key, not a prototype.
    return Object.fromEntries(
      Array.from(this.#statuses, ([service, number]) => [
        service,
        healthStatusNames[number]!,
      ]),
    );
  }

  /** Sets every status to NOT_SERVING, and ignores `set` until `resume()`. */
  shutdown(): void {
    this.#shutdown = true;
    this.#update(Array.from(this.#statuses.keys()), 2);
  }

  /** Sets every status to SERVING, and takes `set` again. */
  resume(): void {
    this.#shutdown = false;
    this.#update(Array.from(this.#statuses.keys()), 1);
  }

  /**
   * Calls `listener` with a service's new status each time it changes
   * (not when it is set to what it already was), until the function
   * returned is called.
   */
  subscribe(
    service: string,
    listener: (status: HealthServingStatus) => void,
  ): () => void {
    let listeners = this.#listeners.get(service);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(service, listeners);
    }
    // A wrapper of its own, so that the same function subscribed twice is
    // two subscriptions, each ended by its own function.
    const entry = (status: HealthServingStatus) => listener(status);
    listeners.add(entry);
    return () => {
      const current = this.#listeners.get(service);
      if (current?.delete(entry) === true && current.size === 0) {
        this.#listeners.delete(service);
      }
    };
  }

  // Every status is stored before any listener runs, so that what one
  // throws leaves no service behind, and listeners see the whole change.
  #update(services: readonly string[], number: HealthStatusNumber): void {
    const changed = services.filter(
      (service) => this.#statuses.get(service) !== number,
    );
    for (const service of changed) this.#statuses.set(service, number);
    let failed = false;
    let failure: unknown;
    const name = healthStatusNames[number]!;
    for (const service of changed) {
      const listeners = this.#listeners.get(service);
      if (listeners === undefined) continue;
      for (const listener of Array.from(listeners)) {
        try {
          listener(name);
        } catch (e) {
          if (!failed) {
            failed = true;
            failure = e;
          }
        }
      }
    }
    if (failed) throw failure;
  }
}

/**
 * A HealthStatus where the services given are SERVING, and the server ("")
 * too, as connect-go's static checker starts. A service is given by name
 * (`acme.v1.Billing`), or as a handler or definition, whose path
 * (`/acme.v1.Billing/`) holds the name, or as a list of handlers (what a
 * factory serving several paths returns, as `nodeHandler` takes them).
 */
export function healthStatusOf(
  services: readonly (
    string | { readonly path: string } | readonly { readonly path: string }[]
  )[],
): HealthStatus {
  const status = new HealthStatus();
  for (const service of services.flat()) {
    status.set(
      typeof service === "string" ? service : service.path.slice(1, -1),
      1,
    );
  }
  return status;
}

/**
 * The methods of `grpc.health.v1.Health` over a HealthStatus, in the shape
 * of the generated `HealthImplementation` (plain objects for the messages,
 * the enum as numbers).
 * @public
 */
export interface HealthMethods {
  /** The service's status; NOT_FOUND for a service that has none. */
  check(
    request: { readonly service: string },
    context: Pick<HandlerContext, "signal">,
  ): { status: HealthStatusNumber };
  /** Every service's status, the server's ("") included. */
  list(
    request: object,
    context: Pick<HandlerContext, "signal">,
  ): { statuses: { [service: string]: { status: HealthStatusNumber } } };
  /**
   * The service's status at once (SERVICE_UNKNOWN while it has none), then
   * each change, until the call's signal aborts. A client that reads slowly
   * gets the latest status when it reads again, never a backlog.
   */
  watch(
    request: { readonly service: string },
    context: Pick<HandlerContext, "signal">,
  ): AsyncIterable<{ status: HealthStatusNumber }>;
}

/**
 * The health service's implementation answering from `status`: pass it to
 * `createHealthHandler` of the file generated for grpc.health.v1.Health.
 * @public
 */
export function healthMethods(status: HealthStatus): HealthMethods {
  const numberOf = (service: string): HealthStatusNumber | undefined => {
    const name = status.get(service);
    return name === undefined ? undefined : healthStatusNumber(name);
  };
  return {
    check(request) {
      const number = numberOf(request.service);
      if (number === undefined) {
        throw new ConnectError("unknown service", Code.NotFound);
      }
      return { status: number };
    },
    list() {
      const statuses = status.list();
      const services = Object.keys(statuses);
      if (services.length > healthListMax) {
        throw new ConnectError(
          `server health list exceeds maximum capacity: ${healthListMax}`,
          Code.ResourceExhausted,
        );
      }
      return {
        statuses: Object.fromEntries(
          services.map((service) => [
            service,
            { status: healthStatusNumber(statuses[service]!) },
          ]),
        ),
      };
    },
    async *watch(request, context) {
      const service = request.service;
      const signal = context.signal;
      // The resolve of the wait in progress: a change or the abort ends it.
      // One per watch whatever the number of changes, which are read from
      // `status` when it wakes (coalesced), never queued.
      let wake: (() => void) | undefined;
      const onEvent = () => {
        const resolve = wake;
        wake = undefined;
        resolve?.();
      };
      const unsubscribe = status.subscribe(service, onEvent);
      signal.addEventListener("abort", onEvent);
      try {
        let sent: HealthStatusNumber | undefined;
        for (;;) {
          // Ends the call as grpc-go does, with the signal's reason (the
          // runtime's: canceled or deadline_exceeded).
          signal.throwIfAborted();
          const current = numberOf(service) ?? 3;
          if (current !== sent) {
            sent = current;
            yield { status: current };
          } else {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        }
      } finally {
        unsubscribe();
        signal.removeEventListener("abort", onEvent);
      }
    },
  };
}
