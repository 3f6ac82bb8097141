import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  nodeDrained,
  nodeWriteChunks,
  type NodeDrainable,
} from "./writable.ts";

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** Lets every pending promise callback and I/O callback run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A writable that records its chunks and answers each write with the next
 * of `answers` (true once they run out).
 */
class FakeWritable extends EventEmitter implements NodeDrainable {
  readonly written: Uint8Array[] = [];
  destroyed = false;
  private readonly answers: boolean[];
  constructor(answers: boolean[] = []) {
    super();
    this.answers = answers;
  }
  write(chunk: Uint8Array): boolean {
    this.written.push(chunk);
    return this.answers.shift() ?? true;
  }
  listening(): number {
    return this.listenerCount("drain") + this.listenerCount("close");
  }
}

/** A producer that counts the chunks pulled and knows whether it was stopped. */
function producer(chunks: Uint8Array[]): {
  body: AsyncGenerator<Uint8Array>;
  pulled: () => number;
  finished: () => boolean;
} {
  let pulled = 0;
  let finished = false;
  const body = (async function* () {
    try {
      for (const chunk of chunks) {
        pulled++;
        yield chunk;
      }
    } finally {
      finished = true;
    }
  })();
  return { body, pulled: () => pulled, finished: () => finished };
}

describe("nodeDrained", () => {
  it.each(["drain", "close"] as const)(
    "resolves on %s and removes both listeners",
    async (event) => {
      const writable = new FakeWritable();
      let resolved = false;
      const drained = nodeDrained(writable).then(() => {
        resolved = true;
      });
      expect(writable.listenerCount("drain")).toBe(1);
      expect(writable.listenerCount("close")).toBe(1);
      await settle();
      expect(resolved).toBe(false);
      writable.emit(event);
      await drained;
      expect(resolved).toBe(true);
      expect(writable.listening()).toBe(0);
    },
  );

  it("is not confused by both events firing", async () => {
    const writable = new FakeWritable();
    const drained = nodeDrained(writable);
    writable.emit("drain");
    writable.emit("close");
    await drained;
    expect(writable.listening()).toBe(0);
  });
});

describe("nodeWriteChunks", () => {
  it("writes nothing for an empty body and reports it ended", async () => {
    const writable = new FakeWritable();
    const signal = new AbortController().signal;
    await expect(
      nodeWriteChunks(writable, producer([]).body, signal),
    ).resolves.toBe(true);
    expect(writable.written).toEqual([]);
  });

  it("writes every chunk in order while the writable takes them", async () => {
    const writable = new FakeWritable();
    const chunks = [bytes(1), bytes(), bytes(2, 3)];
    const result = await nodeWriteChunks(
      writable,
      producer(chunks).body,
      new AbortController().signal,
    );
    expect(result).toBe(true);
    expect(writable.written).toEqual(chunks);
    expect(writable.listening()).toBe(0);
  });

  it("does not pull the next chunk until a full writable drains", async () => {
    const writable = new FakeWritable([false, false, true]);
    const { body, pulled } = producer([bytes(1), bytes(2), bytes(3)]);
    let result: boolean | undefined;
    const writing = nodeWriteChunks(
      writable,
      body,
      new AbortController().signal,
    ).then((r) => (result = r));

    await settle();
    expect(writable.written).toEqual([bytes(1)]);
    expect(pulled()).toBe(1);
    expect(writable.listenerCount("drain")).toBe(1);

    writable.emit("drain");
    await settle();
    expect(writable.written).toEqual([bytes(1), bytes(2)]);
    expect(pulled()).toBe(2);
    // One wait at a time: the first drain's listeners are gone.
    expect(writable.listenerCount("drain")).toBe(1);
    expect(result).toBeUndefined();

    writable.emit("drain");
    await writing;
    expect(result).toBe(true);
    expect(writable.written).toEqual([bytes(1), bytes(2), bytes(3)]);
    expect(writable.listening()).toBe(0);
  });

  it("goes on writing after a close while full: the next write finds out", async () => {
    const writable = new FakeWritable([false]);
    const writing = nodeWriteChunks(
      writable,
      producer([bytes(1), bytes(2)]).body,
      new AbortController().signal,
    );
    await settle();
    writable.emit("close");
    await expect(writing).resolves.toBe(true);
    expect(writable.written).toEqual([bytes(1), bytes(2)]);
  });

  it("returns false without writing when the signal fired before the first chunk, and stops the producer", async () => {
    const writable = new FakeWritable();
    const controller = new AbortController();
    controller.abort();
    const { body, pulled, finished } = producer([bytes(1), bytes(2)]);
    await expect(
      nodeWriteChunks(writable, body, controller.signal),
    ).resolves.toBe(false);
    expect(writable.written).toEqual([]);
    expect(pulled()).toBe(1);
    expect(finished()).toBe(true);
  });

  it("returns false at the next chunk once the signal fires between writes", async () => {
    const writable = new FakeWritable();
    const controller = new AbortController();
    let stopped = false;
    const body = (async function* () {
      try {
        yield bytes(1);
        controller.abort();
        yield bytes(2);
        yield bytes(3);
      } finally {
        stopped = true;
      }
    })();
    await expect(
      nodeWriteChunks(writable, body, controller.signal),
    ).resolves.toBe(false);
    expect(writable.written).toEqual([bytes(1)]);
    expect(stopped).toBe(true);
  });

  it.each(["drain", "close"] as const)(
    "returns false when the signal fires while waiting, once the writable emits %s",
    async (event) => {
      const writable = new FakeWritable([false]);
      const controller = new AbortController();
      const { body, pulled, finished } = producer([bytes(1), bytes(2)]);
      const writing = nodeWriteChunks(writable, body, controller.signal);
      await settle();
      controller.abort();
      writable.emit(event);
      await expect(writing).resolves.toBe(false);
      expect(writable.written).toEqual([bytes(1)]);
      expect(pulled()).toBe(1);
      expect(finished()).toBe(true);
      expect(writable.listening()).toBe(0);
    },
  );

  it("passes on the producer's error", async () => {
    const writable = new FakeWritable();
    const failure = new Error("producer failed");
    const body = (async function* () {
      yield bytes(1);
      throw failure;
    })();
    await expect(
      nodeWriteChunks(writable, body, new AbortController().signal),
    ).rejects.toBe(failure);
    expect(writable.written).toEqual([bytes(1)]);
  });

  it("holds back the producer on a real Writable until it drains", async () => {
    const callbacks: (() => void)[] = [];
    const received: number[] = [];
    const writable = new Writable({
      highWaterMark: 2,
      write(chunk: Buffer, _encoding, callback) {
        received.push(...chunk);
        callbacks.push(() => callback());
      },
    });
    const { body, pulled } = producer([bytes(1, 2), bytes(3), bytes(4)]);
    const writing = nodeWriteChunks(
      writable,
      body,
      new AbortController().signal,
    );
    await settle();
    // Two bytes reach the high-water mark: the writer waits.
    expect(pulled()).toBe(1);
    expect(received).toEqual([1, 2]);
    callbacks.shift()!();
    await settle();
    // Drained: [3] fits, [4] fills it again (queued behind [3]).
    expect(pulled()).toBe(3);
    expect(received).toEqual([1, 2, 3]);
    while (callbacks.length > 0) {
      callbacks.shift()!();
      await settle();
    }
    await expect(writing).resolves.toBe(true);
    expect(received).toEqual([1, 2, 3, 4]);
  });

  it("stops on a real Writable destroyed while full, once the signal has fired", async () => {
    const writable = new Writable({
      highWaterMark: 1,
      write() {
        // Never completes: a client that stopped reading.
      },
    });
    const controller = new AbortController();
    writable.on("close", () => controller.abort());
    const { body, pulled, finished } = producer([bytes(1), bytes(2)]);
    const writing = nodeWriteChunks(writable, body, controller.signal);
    await settle();
    expect(pulled()).toBe(1);
    writable.destroy();
    await expect(writing).resolves.toBe(false);
    expect(pulled()).toBe(1);
    expect(finished()).toBe(true);
  });

  it("stops on a Writable destroyed between writes, though no signal fires", async () => {
    // Destroyed while the producer was between chunks: its "close" has
    // passed before a full write could wait for it.
    const writable = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        callback();
      },
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const body = (async function* () {
      yield bytes(1);
      await gate;
      yield bytes(2);
      yield bytes(3);
    })();
    const writing = nodeWriteChunks(
      writable,
      body,
      new AbortController().signal,
    );
    await settle();
    writable.destroy();
    await new Promise((resolve) => writable.once("close", resolve));
    release();
    await expect(writing).resolves.toBe(false);
    expect(writable.listenerCount("drain")).toBe(0);
  });

  it("does not wait for a destroyed writable to drain", async () => {
    const writable = new FakeWritable();
    writable.destroyed = true;
    await expect(nodeDrained(writable)).resolves.toBeUndefined();
    expect(writable.listening()).toBe(0);
  });
});

describe("nodeWriteChunks during a graceful shutdown", () => {
  it("goes on writing when the signal aborts with the shutdown's reason", async () => {
    const writable = new FakeWritable();
    const controller = new AbortController();
    const shutdown = { reason: new Error("the server is shutting down") };
    const { body, finished } = producer([bytes(1), bytes(2)]);
    controller.abort(shutdown.reason);
    expect(
      await nodeWriteChunks(writable, body, controller.signal, shutdown),
    ).toBe(true);
    expect(writable.written).toEqual([bytes(1), bytes(2)]);
    expect(finished()).toBe(true);
  });

  it("stops for any other reason (the client went away)", async () => {
    const writable = new FakeWritable();
    const controller = new AbortController();
    const shutdown = { reason: undefined };
    const { body } = producer([bytes(1), bytes(2)]);
    controller.abort(new Error("gone"));
    expect(
      await nodeWriteChunks(writable, body, controller.signal, shutdown),
    ).toBe(false);
    expect(writable.written).toEqual([]);
  });
});
