import { describe, expect, it } from "vitest";
import { Code } from "./code.ts";
import type { Compression } from "./compression.ts";
import { decompressGate } from "./decompress-gate.ts";
import { ConnectError } from "./errors.ts";

/** A compression whose decompressions finish when the test says so, counting how many run at once. */
function controlled() {
  let running = 0;
  let maxRunning = 0;
  let started = 0;
  const pending: (() => void)[] = [];
  const compression: Compression = {
    name: "test",
    compress: async (data) => data,
    decompress(data) {
      started++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      return new Promise((resolve) =>
        pending.push(() => {
          running--;
          resolve(data);
        }),
      );
    },
  };
  return {
    compression,
    finishOne: () => pending.shift()?.(),
    get maxRunning() {
      return maxRunning;
    },
    get started() {
      return started;
    },
    get waitingToFinish() {
      return pending.length;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const data = new Uint8Array([1]);
const live = new AbortController().signal;

async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    return (e as ConnectError).code;
  }
}

describe("decompressGate", () => {
  it("runs budget / readMaxBytes decompressions at once, queues the next, refuses past the queue", async () => {
    const c = controlled();
    // 4 slots (16 / 4), a queue of 3.
    const gate = decompressGate(16, 4, 3);
    const calls = Array.from({ length: 10 }, () =>
      codeOf(gate.decompress(c.compression, data, 4, live)),
    );
    await tick();
    expect(c.started).toBe(4);
    // 4 running, 3 queued, 3 refused at once.
    const refused = await Promise.all(calls.slice(7));
    expect(refused).toEqual([
      Code.ResourceExhausted,
      Code.ResourceExhausted,
      Code.ResourceExhausted,
    ]);
    while (c.started < 7 || c.waitingToFinish > 0) {
      c.finishOne();
      await tick();
    }
    expect(await Promise.all(calls.slice(0, 7))).toEqual(Array(7).fill("ok"));
    expect(c.maxRunning).toBe(4);
    expect(c.started).toBe(7);
    // All slots are free again.
    const again = Array.from({ length: 4 }, () =>
      gate.decompress(c.compression, data, 4, live),
    );
    await tick();
    expect(c.started).toBe(11);
    for (let i = 0; i < 4; i++) c.finishOne();
    await Promise.all(again);
  });

  it("has at least one slot when readMaxBytes exceeds the budget", async () => {
    const c = controlled();
    const gate = decompressGate(1, 1024, 1);
    const first = gate.decompress(c.compression, data, 1024, live);
    const second = gate.decompress(c.compression, data, 1024, live);
    await tick();
    expect(c.started).toBe(1);
    c.finishOne();
    await first;
    await tick();
    expect(c.started).toBe(2);
    c.finishOne();
    await second;
  });

  it("a slot freed by a failed decompression goes to the next in line", async () => {
    let calls = 0;
    const failing: Compression = {
      name: "test",
      compress: async (d) => d,
      decompress: async () => {
        calls++;
        throw new ConnectError("corrupt", Code.InvalidArgument);
      },
    };
    const gate = decompressGate(1, 1, 5);
    const codes = await Promise.all(
      Array.from({ length: 5 }, () =>
        codeOf(gate.decompress(failing, data, 1, live)),
      ),
    );
    expect(codes).toEqual(Array(5).fill(Code.InvalidArgument));
    expect(calls).toBe(5);
  });

  it("a queued request whose client has gone is not decompressed", async () => {
    const c = controlled();
    const gate = decompressGate(1, 1, 5);
    const first = gate.decompress(c.compression, data, 1, live);
    const gone = new AbortController();
    const queued = codeOf(gate.decompress(c.compression, data, 1, gone.signal));
    const next = gate.decompress(c.compression, data, 1, live);
    gone.abort(new ConnectError("gone", Code.Canceled));
    c.finishOne();
    await first;
    expect(await queued).toBe(Code.Canceled);
    await tick();
    // The slot passed on to the next one.
    expect(c.started).toBe(2);
    c.finishOne();
    await next;
  });
});
