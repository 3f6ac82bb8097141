import { getEventListeners } from "node:events";
import { queryObjects } from "node:v8";
import type { Message } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import {
  deadlineForRequest,
  deadlineStart,
  type Deadline,
} from "../core/deadline.ts";
import { ConnectError } from "../core/errors.ts";
import type { HandlerContext } from "./handler.ts";
import type { ServerConfig } from "./config.ts";
import { serverWriteStream, type StreamStart } from "./stream.ts";

// The messages of these tests: queryObjects counts the live ones.
class Tracked {
  // What isMessage looks for: the write loop then sends it as it is.
  readonly $typeName = "test.Tracked";
  readonly index: number;
  constructor(index: number) {
    this.index = index;
  }
}

const chunk = new Uint8Array(1);

/**
 * A response stream whose implementation yields a new message each time,
 * until `stall` is set: then its next message never comes. The write loop
 * is pulled as the HTTP layer pulls it.
 */
function writeLoop(deadline: Deadline) {
  const state = { stall: false, produced: 0, error: undefined as unknown };
  async function* implementation(): AsyncGenerator<Message> {
    for (;;) {
      if (state.stall) await new Promise(() => {});
      yield new Tracked(state.produced++) as unknown as Message;
    }
  }
  const iterator = implementation();
  const start = async (): Promise<Extract<StreamStart, { ok: true }>> => ({
    ok: true,
    header: new Headers(),
    trailer: new Headers(),
    first: await iterator.next(),
    iterator,
    // Read only to report an error, which these tests raise as ConnectErrors.
    config: {
      redactErrors: false,
      onError: undefined,
    } as unknown as ServerConfig,
    context: {
      method: { output: { typeName: "test.Tracked" } },
    } as unknown as HandlerContext,
  });
  const body = start().then((s) =>
    serverWriteStream(
      s,
      deadline,
      () => ({ flags: 0, data: chunk }),
      (error) => {
        state.error = error;
        return undefined;
      },
    )[Symbol.asyncIterator](),
  );
  const pull = async (n: number) => {
    const b = await body;
    for (let i = 0; i < n; i++) {
      const result = await b.next();
      if (result.done === true) return;
    }
  };
  return { state, body, pull };
}

const live = () => queryObjects(Tracked, { format: "count" });

describe("serverWriteStream", () => {
  // A call's signal that never fires (no deadline, a client that stays)
  // must not collect something per message: a reaction on a promise that
  // stands for it, raced once per message, kept every message alive until
  // the call ended (hundreds of MiB for a million messages).
  for (const [name, make] of [
    ["without a timeout", (s: AbortSignal) => deadlineForRequest(undefined, s)],
    ["with a timeout", (s: AbortSignal) => deadlineStart(3_600_000, s)],
  ] as const) {
    it(`holds no message it has written, ${name}`, async () => {
      const request = new AbortController();
      const deadline = make(request.signal);
      const { state, pull } = writeLoop(deadline);
      await pull(1000);
      const before = live();
      await pull(20_000);
      const after = live();
      expect(state.produced).toBeGreaterThanOrEqual(21_000);
      // A few in flight at most; the leak kept all 20,000.
      expect(after - before).toBeLessThan(100);
      expect(getEventListeners(deadline.signal, "abort").length).toBe(1);
      request.abort(new ConnectError("gone", Code.Canceled));
      await pull(1);
      deadline.cleanup();
    });
  }

  it("still interrupts a stalled implementation when the client goes away", async () => {
    const request = new AbortController();
    const deadline = deadlineForRequest(undefined, request.signal);
    const { state, pull } = writeLoop(deadline);
    await pull(100);
    state.stall = true;
    const pending = pull(10);
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.error).toBeUndefined();
    request.abort(new ConnectError("the client went away", Code.Canceled));
    await pending;
    expect(state.error).toMatchObject({ code: Code.Canceled });
  });

  it("still interrupts a stalled implementation at the deadline", async () => {
    const request = new AbortController();
    const deadline = deadlineStart(20, request.signal);
    const { state, pull } = writeLoop(deadline);
    await pull(100);
    state.stall = true;
    await pull(10);
    expect(state.error).toMatchObject({ code: Code.DeadlineExceeded });
  });
});

/** A stream of `count` messages, its end envelope a single byte 9. */
async function pushBody(
  count: number,
  deadline: Deadline,
  payload: Uint8Array = chunk,
  end: () => Uint8Array = () => new Uint8Array([9]),
) {
  const state = { produced: 0, finished: false };
  async function* implementation(): AsyncGenerator<Message> {
    try {
      while (state.produced < count) {
        yield new Tracked(state.produced++) as unknown as Message;
      }
    } finally {
      state.finished = true;
    }
  }
  const iterator = implementation();
  const start: Extract<StreamStart, { ok: true }> = {
    ok: true,
    header: new Headers(),
    trailer: new Headers(),
    first: await iterator.next(),
    iterator,
    config: {} as ServerConfig,
    context: {
      method: { output: { typeName: "test.Tracked" } },
    } as unknown as HandlerContext,
  };
  const body = serverWriteStream(
    start,
    deadline,
    () => ({ flags: 0, data: payload }),
    end,
  );
  return { state, body };
}

describe("serverWriteStream pushed to a sink", () => {
  it("frames a small payload whole, one chunk per message, the end last, waiting for drain when full", async () => {
    const { body } = await pushBody(
      3,
      deadlineForRequest(undefined, new AbortController().signal),
    );
    const written: number[][] = [];
    let drains = 0;
    const ok = await body.pushTo({
      // Full after every write: the loop must wait after each message.
      write: (c) => (written.push(Array.from(c)), false),
      drained: async () => {
        drains++;
      },
      stopped: () => false,
    });
    expect(ok).toBe(true);
    expect(written).toEqual([
      [0, 0, 0, 0, 1, 0],
      [0, 0, 0, 0, 1, 0],
      [0, 0, 0, 0, 1, 0],
      [9],
    ]);
    expect(drains).toBe(3);
  });

  it("writes a large payload as a chunk of its own after its header, not copied", async () => {
    const large = new Uint8Array(600).fill(7);
    const { body } = await pushBody(
      2,
      deadlineForRequest(undefined, new AbortController().signal),
      large,
    );
    const written: Uint8Array[] = [];
    const ok = await body.pushTo({
      write: (c) => (written.push(c), true),
      drained: async () => {},
      stopped: () => false,
    });
    expect(ok).toBe(true);
    expect(written.map((c) => c.byteLength)).toEqual([5, 600, 5, 600, 1]);
    expect(Array.from(written[0]!)).toEqual([0, 0, 0, 2, 88]);
    expect(written[1]).toBe(large);
    expect(written[3]).toBe(large);
  });

  it("stops the implementation and writes no end when the sink stops mid-stream", async () => {
    const { state, body } = await pushBody(
      1000,
      deadlineForRequest(undefined, new AbortController().signal),
      new Uint8Array(600),
    );
    let stopped = false;
    let writes = 0;
    const ok = await body.pushTo({
      write: () => {
        if (++writes === 10) stopped = true;
        return false;
      },
      drained: async () => {},
      stopped: () => stopped,
    });
    expect(ok).toBe(false);
    expect(writes).toBe(10);
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.finished).toBe(true);
    expect(state.produced).toBeLessThan(10);
  });
});

describe("serverWriteStream read as a web stream", () => {
  it("fails the reader, not the process, when encoding the end throws", async () => {
    const { body } = await pushBody(
      1,
      deadlineForRequest(undefined, new AbortController().signal),
      chunk,
      () => {
        throw new Error("end refused");
      },
    );
    const reader = body.toWebStream().getReader();
    expect((await reader.read()).done).toBe(false);
    await expect(reader.read()).rejects.toThrow("end refused");
  });

  it("writes a message per read, framed as pushed, the end last", async () => {
    const large = new Uint8Array(600).fill(7);
    const { state, body } = await pushBody(
      3,
      deadlineForRequest(undefined, new AbortController().signal),
      large,
    );
    const reader = body.toWebStream().getReader();
    const header = await reader.read();
    expect(Array.from(header.value!)).toEqual([0, 0, 0, 2, 88]);
    expect((await reader.read()).value).toBe(large);
    // Backpressure: the implementation is not asked for a message no read
    // waits for.
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.produced).toBe(1);
    const rest: number[] = [];
    for (;;) {
      const result = await reader.read();
      if (result.done) break;
      rest.push(result.value.byteLength);
    }
    expect(rest).toEqual([5, 600, 5, 600, 1]);
    expect(state.finished).toBe(true);
  });

  it("on cancel, calls onCancel first, then stops the implementation", async () => {
    const { state, body } = await pushBody(
      1000,
      deadlineForRequest(undefined, new AbortController().signal),
    );
    const events: string[] = [];
    const reader = body.toWebStream(() => events.push("onCancel")).getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    events.push(state.finished ? "finished" : "running");
    expect(events).toEqual(["onCancel", "finished"]);
    expect(state.produced).toBeLessThan(4);
  });

  it("a cancel before the first read still stops the implementation", async () => {
    const { state, body } = await pushBody(
      1000,
      deadlineForRequest(undefined, new AbortController().signal),
    );
    await body.toWebStream().cancel();
    expect(state.finished).toBe(true);
    expect(state.produced).toBe(1);
  });

  it("a cancel while the implementation stalls ends the pending read", async () => {
    const request = new AbortController();
    const deadline = deadlineForRequest(undefined, request.signal);
    const { state, body } = writeLoop(deadline);
    const reader = (await body) as AsyncIterator<Uint8Array>;
    await reader.next();
    state.stall = true;
    const pending = reader.next();
    await new Promise((resolve) => setImmediate(resolve));
    // What the fetch handler's onCancel does: the call's signal aborts.
    request.abort(new ConnectError("the client went away", Code.Canceled));
    await reader.return!();
    expect((await pending).done).toBe(true);
    expect(state.error).toMatchObject({ code: Code.Canceled });
  });
});
