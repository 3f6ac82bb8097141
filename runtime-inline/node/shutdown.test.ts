import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Code } from "../core/code.ts";
import { isConnectError } from "../core/errors.ts";
import {
  nodeCallTracker,
  shutdownGracefully,
  type NodeTrackedResponse,
  type ShutdownServer,
} from "./shutdown.ts";

/** A server that records what shutdown does to it; `closed()` lets close() finish. */
function fakeServer() {
  const log: string[] = [];
  let finishClose = () => {};
  const server: ShutdownServer = {
    close(callback) {
      log.push("close");
      finishClose = () => callback?.();
    },
    closeIdleConnections() {
      log.push("closeIdleConnections");
    },
    closeAllConnections() {
      log.push("closeAllConnections");
    },
  };
  return { server, log, closed: () => finishClose() };
}

/** Adds a call to a server's tracker, as nodeServe does. */
function track(server: object, response: Partial<NodeTrackedResponse> = {}) {
  const tracker = nodeCallTracker(server);
  const controller = new AbortController();
  const destroyed: string[] = [];
  tracker.calls.set(controller, {
    destroy: () => destroyed.push("response"),
    ...response,
  });
  return {
    controller,
    destroyed,
    end() {
      tracker.calls.delete(controller);
      tracker.ended?.();
    },
  };
}

/** Whether a promise has settled, after pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(0);
  return done;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("nodeCallTracker", () => {
  it("is one per server, and shared by every copy of the runtime", () => {
    const server = {};
    const tracker = nodeCallTracker(server);
    expect(nodeCallTracker(server)).toBe(tracker);
    // Another generated file finds it under the same registry symbol.
    const key = Symbol.for("connect-standalone.calls-in-flight.v1");
    expect((server as Record<symbol, unknown>)[key]).toBe(tracker);
    expect(nodeCallTracker({})).not.toBe(tracker);
  });
});

describe("shutdownGracefully", () => {
  it("resolves once the server has closed when no call is in flight", async () => {
    const { server, log, closed } = fakeServer();
    const done = shutdownGracefully(server);
    expect(log.slice(0, 2)).toEqual(["close", "closeIdleConnections"]);
    expect(await settled(done)).toBe(false);
    closed();
    expect(await settled(done)).toBe(true);
  });

  it("aborts the calls still running when graceMs has passed, with unavailable", async () => {
    const { server, closed } = fakeServer();
    const call = track(server);
    const tracker = nodeCallTracker(server);
    const done = shutdownGracefully(server, { graceMs: 1000, forceMs: 500 });
    expect(tracker.closing).toBe(true);
    await vi.advanceTimersByTimeAsync(999);
    expect(call.controller.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const reason: unknown = call.controller.signal.reason;
    expect(isConnectError(reason) && reason.code).toBe(Code.Unavailable);
    expect(isConnectError(reason) && reason.rawMessage).toBe(
      "the server is shutting down",
    );
    expect(tracker.reason).toBe(reason);
    call.end();
    closed();
    expect(await settled(done)).toBe(true);
    expect(call.destroyed).toEqual([]);
    expect(tracker.ended).toBeUndefined();
  });

  it("does not abort calls that end within the grace period", async () => {
    const { server, closed } = fakeServer();
    const call = track(server);
    const done = shutdownGracefully(server, { graceMs: 1000 });
    call.end();
    closed();
    expect(await settled(done)).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(call.controller.signal.aborted).toBe(false);
  });

  it("ends the grace period when its signal aborts, and a second call joins the first", async () => {
    const { server, closed } = fakeServer();
    const call = track(server);
    const end = new AbortController();
    const done = shutdownGracefully(server, {
      graceMs: 60_000,
      signal: end.signal,
    });
    expect(shutdownGracefully(server)).toBe(done);
    expect(call.controller.signal.aborted).toBe(false);
    end.abort();
    expect(call.controller.signal.aborted).toBe(true);
    call.end();
    closed();
    expect(await settled(done)).toBe(true);
  });

  it("destroys the connections of calls that ignore their signal, forceMs after the grace period", async () => {
    const { server, log, closed } = fakeServer();
    const http1 = track(server);
    const sessionLog: string[] = [];
    const http2 = track(server, {
      session: {
        close: () => sessionLog.push("close"),
        destroy: () => sessionLog.push("destroy"),
      },
    });
    const done = shutdownGracefully(server, { graceMs: 100, forceMs: 50 });
    // A GOAWAY for the session of a call in flight.
    expect(sessionLog).toEqual(["close"]);
    await vi.advanceTimersByTimeAsync(100);
    expect(http1.controller.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(49);
    expect(http1.destroyed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(http1.destroyed).toEqual(["response"]);
    expect(http2.destroyed).toEqual([]);
    expect(sessionLog).toEqual(["close", "destroy"]);
    expect(log).toContain("closeAllConnections");
    closed();
    expect(await settled(done)).toBe(true);
  });
});
