import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  HealthStatus,
  healthMethods,
  healthStatusOf,
  type HealthServingStatus,
} from "./health.ts";

// Lets every pending promise reaction run: what has not settled by then
// waits for something else (a change, an abort). Order, not time.
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A status whose subscriptions are counted, to find leaks. */
function countedStatus(
  statuses?: ConstructorParameters<typeof HealthStatus>[0],
): { status: HealthStatus; active: () => number } {
  const status = new HealthStatus(statuses);
  const subscribe = status.subscribe.bind(status);
  let active = 0;
  status.subscribe = (service, listener) => {
    active++;
    const unsubscribe = subscribe(service, listener);
    return () => {
      active--;
      unsubscribe();
    };
  };
  return { status, active: () => active };
}

function watch(status: HealthStatus, service: string, signal: AbortSignal) {
  return healthMethods(status)
    .watch({ service }, { signal })
    [Symbol.asyncIterator]();
}

describe("HealthStatus", () => {
  it("has the server's status, SERVING, and no other", () => {
    const status = new HealthStatus();
    expect(status.get("")).toBe("SERVING");
    expect(status.get("acme.v1.Billing")).toBeUndefined();
    expect(status.list()).toEqual({ "": "SERVING" });
  });

  it("starts with the statuses given, by name or number", () => {
    const status = new HealthStatus({
      "": "NOT_SERVING",
      "acme.v1.Billing": "SERVING",
      "acme.v1.Audit": 2,
    });
    expect(status.list()).toEqual({
      "": "NOT_SERVING",
      "acme.v1.Billing": "SERVING",
      "acme.v1.Audit": "NOT_SERVING",
    });
  });

  it("sets statuses by name or number, and refuses anything else", () => {
    const status = new HealthStatus();
    status.set("a.A", "NOT_SERVING");
    expect(status.get("a.A")).toBe("NOT_SERVING");
    status.set("a.A", 0);
    expect(status.get("a.A")).toBe("UNKNOWN");
    for (const bad of ["serving", "", 4, -1, 1.5, NaN]) {
      expect(() =>
        status.set("a.A", bad as unknown as HealthServingStatus),
      ).toThrow(TypeError);
    }
    expect(() => new HealthStatus({ x: 7 as 1 })).toThrow(
      /not a health status: 7/,
    );
    expect(status.get("a.A")).toBe("UNKNOWN");
  });

  it("keeps a service named __proto__ as a service", () => {
    const status = new HealthStatus();
    status.set("__proto__", "SERVING");
    const list = status.list();
    expect(Object.keys(list)).toEqual(["", "__proto__"]);
    expect(Object.getPrototypeOf(list)).toBe(Object.prototype);
  });

  it("calls listeners on changes of their service only, until unsubscribed", () => {
    const status = new HealthStatus();
    const seen: string[] = [];
    const unsubscribe = status.subscribe("a.A", (s) => seen.push(`a ${s}`));
    status.subscribe("b.B", (s) => seen.push(`b ${s}`));
    status.set("a.A", "SERVING");
    status.set("a.A", "SERVING"); // no change
    status.set("b.B", "NOT_SERVING");
    unsubscribe();
    unsubscribe(); // twice is harmless
    status.set("a.A", "NOT_SERVING");
    expect(seen).toEqual(["a SERVING", "b NOT_SERVING"]);
  });

  it("counts the same listener subscribed twice as two subscriptions", () => {
    const status = new HealthStatus();
    let calls = 0;
    const listener = () => void calls++;
    const first = status.subscribe("a.A", listener);
    status.subscribe("a.A", listener);
    status.set("a.A", "SERVING");
    expect(calls).toBe(2);
    first();
    status.set("a.A", "NOT_SERVING");
    expect(calls).toBe(3);
  });

  it("calls every listener and stores the change when one throws, then throws", () => {
    const status = new HealthStatus();
    const seen: string[] = [];
    status.subscribe("a.A", () => {
      throw new Error("listener failed");
    });
    status.subscribe("a.A", (s) => seen.push(s));
    expect(() => status.set("a.A", "SERVING")).toThrow("listener failed");
    expect(seen).toEqual(["SERVING"]);
    expect(status.get("a.A")).toBe("SERVING");
  });

  it("shutdown() sets NOT_SERVING everywhere and ignores sets until resume()", () => {
    const status = new HealthStatus({ "a.A": "SERVING", "b.B": "UNKNOWN" });
    const seen: string[] = [];
    status.subscribe("", (s) => seen.push(`"" ${s}`));
    status.subscribe("a.A", (s) => seen.push(`a ${s}`));
    status.shutdown();
    expect(status.list()).toEqual({
      "": "NOT_SERVING",
      "a.A": "NOT_SERVING",
      "b.B": "NOT_SERVING",
    });
    status.set("a.A", "SERVING");
    status.set("c.C", "SERVING");
    expect(status.get("a.A")).toBe("NOT_SERVING");
    expect(status.get("c.C")).toBeUndefined();
    status.resume();
    expect(status.list()).toEqual({
      "": "SERVING",
      "a.A": "SERVING",
      "b.B": "SERVING",
    });
    status.set("a.A", "NOT_SERVING");
    expect(status.get("a.A")).toBe("NOT_SERVING");
    expect(seen).toEqual([
      '"" NOT_SERVING',
      "a NOT_SERVING",
      '"" SERVING',
      "a SERVING",
      "a NOT_SERVING",
    ]);
  });
});

describe("healthStatusOf", () => {
  it("has the services given SERVING, by name, handler, definition or list of handlers", () => {
    const status = healthStatusOf([
      "acme.v1.Billing",
      { path: "/connectrpc.eliza.v1.ElizaService/" },
      [{ path: "/acme.v1.Audit/" }, { path: "/acme.v1alpha.Audit/" }],
    ]);
    expect(status.list()).toEqual({
      "": "SERVING",
      "acme.v1.Billing": "SERVING",
      "connectrpc.eliza.v1.ElizaService": "SERVING",
      "acme.v1.Audit": "SERVING",
      "acme.v1alpha.Audit": "SERVING",
    });
  });
});

describe("healthMethods", () => {
  const signal = new AbortController().signal;

  it("check answers a service's status, the server's for \"\"", () => {
    const status = new HealthStatus({ "a.A": "NOT_SERVING" });
    const methods = healthMethods(status);
    expect(methods.check({ service: "" }, { signal })).toEqual({ status: 1 });
    expect(methods.check({ service: "a.A" }, { signal })).toEqual({
      status: 2,
    });
  });

  it("check fails NOT_FOUND for a service without a status", () => {
    const methods = healthMethods(new HealthStatus());
    let error: unknown;
    try {
      methods.check({ service: "nope.Nope" }, { signal });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("list answers every status as numbers", () => {
    const status = new HealthStatus({ "a.A": "NOT_SERVING", "b.B": 0 });
    expect(healthMethods(status).list({}, { signal })).toEqual({
      statuses: {
        "": { status: 1 },
        "a.A": { status: 2 },
        "b.B": { status: 0 },
      },
    });
  });

  it("list fails resource_exhausted past 100 services, as grpc-go", () => {
    const status = new HealthStatus();
    for (let i = 0; i < 99; i++) status.set(`s${i}`, "SERVING");
    const methods = healthMethods(status);
    expect(Object.keys(methods.list({}, { signal }).statuses)).toHaveLength(
      100,
    );
    status.set("one.More", "SERVING");
    expect(() => methods.list({}, { signal })).toThrow(
      expect.objectContaining({ code: Code.ResourceExhausted }),
    );
  });

  describe("watch", () => {
    it("sends the status at once, then each change", async () => {
      const status = new HealthStatus({ "a.A": "SERVING" });
      const controller = new AbortController();
      const stream = watch(status, "a.A", controller.signal);
      expect(await stream.next()).toEqual({
        done: false,
        value: { status: 1 },
      });
      let next = stream.next();
      let settled = false;
      void next.then(() => (settled = true));
      await settle();
      expect(settled).toBe(false); // nothing changed: it waits
      status.set("a.A", "NOT_SERVING");
      expect(await next).toEqual({ done: false, value: { status: 2 } });
      next = stream.next();
      status.set("a.A", "NOT_SERVING"); // the same: nothing to send
      status.set("b.B", "NOT_SERVING"); // another service
      settled = false;
      void next.then(() => (settled = true));
      await settle();
      expect(settled).toBe(false);
      status.shutdown(); // already NOT_SERVING
      status.resume();
      expect(await next).toEqual({ done: false, value: { status: 1 } });
      controller.abort();
      await stream.return?.();
    });

    it("sends SERVICE_UNKNOWN for a service without a status, and keeps watching", async () => {
      const status = new HealthStatus();
      const controller = new AbortController();
      const stream = watch(status, "late.Late", controller.signal);
      expect((await stream.next()).value).toEqual({ status: 3 });
      const next = stream.next();
      status.set("late.Late", "SERVING");
      expect((await next).value).toEqual({ status: 1 });
      controller.abort();
      await stream.return?.();
    });

    it("coalesces changes a slow reader missed into the latest status", async () => {
      const { status, active } = countedStatus({ "a.A": "SERVING" });
      const controller = new AbortController();
      const stream = watch(status, "a.A", controller.signal);
      expect((await stream.next()).value).toEqual({ status: 1 });
      // The reader is away: many changes, nothing queued.
      for (let i = 0; i < 10_000; i++) {
        status.set("a.A", i % 2 === 0 ? "NOT_SERVING" : "UNKNOWN");
      }
      expect(active()).toBe(1);
      expect((await stream.next()).value).toEqual({ status: 0 });
      // Changes that come back to what was sent send nothing.
      status.set("a.A", "SERVING");
      status.set("a.A", "UNKNOWN");
      const next = stream.next();
      let settled = false;
      void next.then(() => (settled = true));
      await settle();
      expect(settled).toBe(false);
      status.set("a.A", "NOT_SERVING");
      expect((await next).value).toEqual({ status: 2 });
      controller.abort();
      await stream.return?.();
    });

    it("ends with the signal's reason when it aborts, leaving no listener", async () => {
      const { status, active } = countedStatus({ "a.A": "SERVING" });
      const controller = new AbortController();
      const stream = watch(status, "a.A", controller.signal);
      await stream.next();
      expect(active()).toBe(1);
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(1);
      const next = stream.next();
      const reason = new ConnectError("client went away", Code.Canceled);
      controller.abort(reason);
      await expect(next).rejects.toBe(reason);
      expect(active()).toBe(0);
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
      expect(await stream.next()).toEqual({ done: true, value: undefined });
    });

    it("leaves no listener when stopped at a yield", async () => {
      const { status, active } = countedStatus();
      const signal = new AbortController().signal;
      const stream = watch(status, "", signal);
      await stream.next();
      expect(active()).toBe(1);
      await stream.return?.();
      expect(active()).toBe(0);
      expect(getEventListeners(signal, "abort")).toHaveLength(0);
    });

    it("ends at once with an aborted signal, subscribing nothing for long", async () => {
      const { status, active } = countedStatus();
      const controller = new AbortController();
      controller.abort(new ConnectError("late", Code.DeadlineExceeded));
      const stream = watch(status, "", controller.signal);
      await expect(stream.next()).rejects.toMatchObject({
        code: Code.DeadlineExceeded,
      });
      expect(active()).toBe(0);
    });

    it("serves many watches of one service, each to its own pace", async () => {
      const { status, active } = countedStatus({ "a.A": "SERVING" });
      const controller = new AbortController();
      const fast = watch(status, "a.A", controller.signal);
      const slow = watch(status, "a.A", controller.signal);
      await fast.next();
      await slow.next();
      const fastNext = fast.next();
      status.set("a.A", "NOT_SERVING");
      expect((await fastNext).value).toEqual({ status: 2 });
      status.set("a.A", "UNKNOWN");
      expect((await fast.next()).value).toEqual({ status: 0 });
      expect((await slow.next()).value).toEqual({ status: 0 });
      expect(active()).toBe(2);
      controller.abort();
      await Promise.allSettled([fast.next(), slow.next()]);
      expect(active()).toBe(0);
    });
  });
});
