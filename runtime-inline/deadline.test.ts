import { describe, expect, it } from "vitest";
import { Code } from "./code.ts";
import { deadlineStart } from "./deadline.ts";
import { ConnectError } from "./errors.ts";

describe("deadlineStart", () => {
  it("aborts with DeadlineExceeded when the time runs out", async () => {
    const deadline = deadlineStart(20, undefined);
    const remaining = deadline.remainingMs();
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(20);
    await expect(deadline.aborted()).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
    expect(deadline.signal.reason).toBeInstanceOf(ConnectError);
    deadline.cleanup();
  });

  it("follows the parent signal with Canceled", async () => {
    const parent = new AbortController();
    const deadline = deadlineStart(undefined, parent.signal);
    expect(deadline.remainingMs()).toBeUndefined();
    parent.abort();
    await expect(deadline.aborted()).rejects.toMatchObject({
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

  it("lets go of the parent and the timer on cleanup", async () => {
    const parent = new AbortController();
    const deadline = deadlineStart(10, parent.signal);
    deadline.cleanup();
    parent.abort();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(deadline.signal.aborted).toBe(false);
  });
});

describe("Deadline.aborted", () => {
  it("is one promise however often a stream races it", async () => {
    const deadline = deadlineStart(undefined, undefined);
    const first = deadline.aborted();
    for (let i = 0; i < 1000; i++) expect(deadline.aborted()).toBe(first);
    deadline.cancel();
    await expect(first).rejects.toMatchObject({ code: Code.Canceled });
    deadline.cleanup();
  });
});
