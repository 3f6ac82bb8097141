import { getEventListeners } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { Code } from "./code.ts";
import {
  deadlineForRequest,
  deadlineStart,
  deadlineWatch,
} from "./deadline.ts";
import { ConnectError } from "./errors.ts";

describe("deadlineStart", () => {
  it("aborts with DeadlineExceeded when the time runs out", async () => {
    vi.useFakeTimers();
    try {
      const deadline = deadlineStart(20, undefined);
      expect(deadline.remainingMs()).toBe(20);
      const aborted = deadline.race(new Promise(() => {}));
      vi.advanceTimersByTime(19);
      expect(deadline.remainingMs()).toBe(1);
      expect(deadline.signal.aborted).toBe(false);
      vi.advanceTimersByTime(1);
      await expect(aborted).rejects.toMatchObject({
        code: Code.DeadlineExceeded,
      });
      expect(deadline.signal.reason).toBeInstanceOf(ConnectError);
      deadline.cleanup();
    } finally {
      vi.useRealTimers();
    }
  });

  // Real timers: the bug is Node's own. An over-long setTimeout fires after
  // 1 ms, and Node runs timers in the order they are due, so the test's
  // 20 ms timer, armed later, cannot run before it.
  it("does not fire early for a timeout past setTimeout's 24.8-day limit", async () => {
    const deadline = deadlineStart(30 * 24 * 3600 * 1000, undefined);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(deadline.signal.aborted).toBe(false);
    deadline.cleanup();
  });

  it("fires at the end of a timeout past the limit", () => {
    vi.useFakeTimers();
    try {
      const timeoutMs = 2 ** 32;
      const deadline = deadlineStart(timeoutMs, undefined);
      vi.advanceTimersByTime(timeoutMs - 10);
      expect(deadline.signal.aborted).toBe(false);
      vi.advanceTimersByTime(20);
      expect(deadline.signal.reason).toMatchObject({
        code: Code.DeadlineExceeded,
      });
      deadline.cleanup();
    } finally {
      vi.useRealTimers();
    }
  });

  it("follows the parent signal with Canceled", async () => {
    const parent = new AbortController();
    const deadline = deadlineStart(undefined, parent.signal);
    expect(deadline.remainingMs()).toBeUndefined();
    const raced = deadline.race(new Promise(() => {}));
    parent.abort();
    await expect(raced).rejects.toMatchObject({
      code: Code.Canceled,
    });
    deadline.cleanup();
  });

  it("starts aborted under an aborted parent", () => {
    const parent = new AbortController();
    parent.abort("gone");
    const deadline = deadlineStart(1000, parent.signal);
    expect(deadline.signal.aborted).toBe(true);
    expect((deadline.signal.reason as ConnectError).code).toBe(Code.Canceled);
    deadline.cleanup();
  });

  it("lets go of the parent and the timer on cleanup", () => {
    vi.useFakeTimers();
    try {
      const parent = new AbortController();
      const deadline = deadlineStart(10, parent.signal);
      deadline.cleanup();
      parent.abort();
      vi.advanceTimersByTime(30);
      expect(deadline.signal.aborted).toBe(false);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("Deadline.race", () => {
  for (const [name, make] of [
    ["with a timeout", (s: AbortSignal) => deadlineStart(60_000, s)],
    ["without a timeout", (s: AbortSignal) => deadlineForRequest(undefined, s)],
  ] as const) {
    it(`settles as the promise does, ${name}`, async () => {
      const parent = new AbortController();
      const deadline = make(parent.signal);
      await expect(deadline.race(Promise.resolve(1))).resolves.toBe(1);
      const failure = new Error("failed");
      await expect(deadline.race(Promise.reject(failure))).rejects.toBe(
        failure,
      );
      deadline.cleanup();
    });

    it(`adds one listener to the signal however often it races, ${name}`, async () => {
      const parent = new AbortController();
      const deadline = make(parent.signal);
      for (let i = 0; i < 1000; i++) {
        await deadline.race(Promise.resolve(i));
      }
      expect(getEventListeners(deadline.signal, "abort").length).toBe(1);
      // The race in progress when the signal fires is the one it rejects.
      const stalled = deadline.race(new Promise(() => {}));
      const reason = new ConnectError("gone", Code.Canceled);
      parent.abort(reason);
      await expect(stalled).rejects.toMatchObject({ code: Code.Canceled });
      // Once aborted, every race fails at once, whatever it races.
      await expect(deadline.race(Promise.resolve(1))).rejects.toMatchObject({
        code: Code.Canceled,
      });
      deadline.cleanup();
    });
  }
});

describe("deadlineForRequest", () => {
  it("without a timeout, is the request's own signal", async () => {
    const request = new AbortController();
    const deadline = deadlineForRequest(undefined, request.signal);
    expect(deadline.signal).toBe(request.signal);
    expect(deadline.remainingMs()).toBeUndefined();
    const raced = deadline.race(new Promise(() => {}));
    const reason = new ConnectError("the client went away", Code.Canceled);
    request.abort(reason);
    await expect(raced).rejects.toBe(reason);
    deadline.cleanup();
  });

  it("with a timeout, fires at the deadline and follows the request", async () => {
    const request = new AbortController();
    vi.useFakeTimers();
    try {
      const timed = deadlineForRequest(10, request.signal);
      expect(timed.signal).not.toBe(request.signal);
      expect(timed.remainingMs()).toBe(10);
      const aborted = timed.race(new Promise(() => {}));
      vi.advanceTimersByTime(10);
      await expect(aborted).rejects.toMatchObject({
        code: Code.DeadlineExceeded,
      });
      timed.cleanup();
    } finally {
      vi.useRealTimers();
    }
    const followed = deadlineForRequest(60_000, request.signal);
    const raced = followed.race(new Promise(() => {}));
    request.abort();
    await expect(raced).rejects.toMatchObject({
      code: Code.Canceled,
    });
    followed.cleanup();
  });
});

describe("deadlineWatch", () => {
  it("aborts the controller at the deadline, or with the parent, until stopped", () => {
    vi.useFakeTimers();
    try {
      const timed = new AbortController();
      const stopTimed = deadlineWatch(timed, 10, undefined);
      vi.advanceTimersByTime(9);
      expect(timed.signal.aborted).toBe(false);
      vi.advanceTimersByTime(1);
      expect(timed.signal.reason).toMatchObject({
        code: Code.DeadlineExceeded,
        rawMessage: "the call exceeded its 10 ms deadline",
      });
      stopTimed();

      const parent = new AbortController();
      const followed = new AbortController();
      const stopFollowed = deadlineWatch(followed, undefined, parent.signal);
      parent.abort();
      expect(followed.signal.reason).toMatchObject({ code: Code.Canceled });
      stopFollowed();

      const stopped = new AbortController();
      const other = new AbortController();
      deadlineWatch(stopped, 10, other.signal)();
      other.abort();
      vi.advanceTimersByTime(30);
      expect(stopped.signal.aborted).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
