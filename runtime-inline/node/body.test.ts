import { PassThrough } from "node:stream";
import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { nodeBody, nodeParsedBody, nodeReadBody } from "./body.ts";

// PassThrough yields Buffers: compared as plain byte arrays.
const bytes = (...values: number[]) => Buffer.from(values);

async function collect(body: AsyncIterable<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of body) out.push(...chunk);
  return out;
}

describe("nodeBody", () => {
  it("yields the chunks in order, then ends", async () => {
    const source = new PassThrough();
    source.write(bytes(1, 2));
    source.write(bytes(3));
    source.end(bytes(4));
    expect(await collect(nodeBody(source))).toEqual([1, 2, 3, 4]);
  });

  it("reads chunks written while the consumer waits", async () => {
    const source = new PassThrough();
    const done = collect(nodeBody(source));
    await tick();
    source.write(bytes(1));
    await tick();
    source.end(bytes(2));
    expect(await done).toEqual([1, 2]);
  });

  it("reads nothing before iteration starts", async () => {
    const source = new PassThrough();
    const body = nodeBody(source);
    source.write(bytes(1));
    await tick();
    expect(source.readableFlowing).toBe(null);
    source.end();
    expect(await collect(body)).toEqual([1]);
  });

  it("pauses the source while a chunk waits for a slow consumer", async () => {
    const source = new PassThrough({ highWaterMark: 4 });
    const iterator = nodeBody(source)[Symbol.asyncIterator]();
    expect((await pending(iterator, source, bytes(1))).value).toEqual(bytes(1));
    // Nobody is waiting: the next chunk is held and the source paused, so
    // the writer sees backpressure instead of the data piling up.
    source.write(bytes(2));
    await tick();
    expect(source.isPaused()).toBe(true);
    const writes = [bytes(3, 3, 3, 3), bytes(4, 4, 4, 4)].map((chunk) =>
      source.write(chunk),
    );
    expect(writes).toContain(false);
    expect((await iterator.next()).value).toEqual(bytes(2));
    expect((await iterator.next()).value).toEqual(bytes(3, 3, 3, 3));
    expect((await iterator.next()).value).toEqual(bytes(4, 4, 4, 4));
    source.end();
    expect((await iterator.next()).done).toBe(true);
  });

  it("fails with Canceled when the source fails, its error only as the cause", async () => {
    const source = new PassThrough();
    const done = collect(nodeBody(source));
    await tick();
    const cause = new Error("connection reset (/srv/app/upload.ts:12:3)");
    source.destroy(cause);
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
    expect((error as ConnectError).message).not.toContain("/srv/");
    expect((error as ConnectError).cause).toBe(cause);
  });

  it("fails with Canceled when the source closes before its end", async () => {
    const source = new PassThrough();
    const done = collect(nodeBody(source));
    source.write(bytes(1));
    await tick();
    source.destroy();
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
  });

  it("discards the rest of the body when the loop is left early, and lets go of the source", async () => {
    const source = new PassThrough();
    source.write(bytes(1));
    for await (const chunk of nodeBody(source)) {
      expect(chunk).toEqual(bytes(1));
      break;
    }
    expect(source.listenerCount("data")).toBe(0);
    expect(source.listenerCount("close")).toBe(0);
    // The source is neither destroyed (the connection must carry the
    // response) nor stuck: what follows is read and dropped.
    expect(source.destroyed).toBe(false);
    source.write(bytes(2));
    source.end(bytes(3));
    await new Promise((resolve) => source.once("end", resolve));
  });
});

describe("nodeReadBody", () => {
  it("joins the chunks", async () => {
    const source = new PassThrough();
    const done = nodeReadBody(source, 10);
    source.write(bytes(1, 2));
    await tick();
    source.end(bytes(3));
    expect(await done).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("returns a single chunk as a plain Uint8Array view, not a Buffer", async () => {
    const source = new PassThrough();
    source.end(bytes(1, 2));
    const body = await nodeReadBody(source, 10);
    expect(Buffer.isBuffer(body)).toBe(false);
    expect(body).toEqual(new Uint8Array([1, 2]));
    expect(source.listenerCount("data")).toBe(0);
    expect(source.listenerCount("close")).toBe(0);
  });

  it("reads an empty body", async () => {
    const source = new PassThrough();
    source.end();
    expect((await nodeReadBody(source, 10)).byteLength).toBe(0);
  });

  it("fails with ResourceExhausted past the limit, then discards the rest", async () => {
    const source = new PassThrough();
    const done = nodeReadBody(source, 3);
    source.write(bytes(1, 2));
    source.write(bytes(3, 4));
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    expect(source.listenerCount("data")).toBe(0);
    expect(source.destroyed).toBe(false);
    source.end(bytes(5));
    await new Promise((resolve) => source.once("end", resolve));
  });

  it("fails with Canceled when the source fails, its error only as the cause", async () => {
    const source = new PassThrough();
    const done = nodeReadBody(source, 10);
    const cause = new Error("connection reset (/srv/app/upload.ts:12:3)");
    source.destroy(cause);
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
    expect((error as ConnectError).message).not.toContain("/srv/");
    expect((error as ConnectError).cause).toBe(cause);
  });

  it("fails with Canceled when the source closes before its end", async () => {
    const source = new PassThrough();
    const done = nodeReadBody(source, 10);
    source.write(bytes(1));
    await tick();
    source.destroy();
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as ConnectError).code).toBe(Code.Canceled);
  });
});

/** Starts `next()` before the chunk arrives, as a consumer already waiting. */
async function pending(
  iterator: AsyncIterator<Uint8Array>,
  source: PassThrough,
  chunk: Uint8Array,
): Promise<IteratorResult<Uint8Array>> {
  const next = iterator.next();
  await tick();
  source.write(chunk);
  return next;
}

describe("nodeParsedBody", () => {
  /** A request stream a body parser has read to its end, leaving `body`. */
  async function parsedRequest(
    body: unknown,
    contentType: string,
    content: readonly number[] = [1],
  ) {
    const source = Object.assign(new PassThrough(), {
      headers: { "content-type": contentType },
      body,
    });
    source.end(Buffer.from(content));
    for await (const _ of source) {
      // What the parser does.
    }
    return source;
  }

  it("is undefined while the stream is unread", () => {
    const source = Object.assign(new PassThrough(), {
      headers: {},
      body: { a: 1 },
    });
    source.end(bytes(1));
    expect(nodeParsedBody(source)).toBeUndefined();
  });

  it("yields bytes as they are, and strings as UTF-8", async () => {
    const raw = await parsedRequest(bytes(1, 2), "application/proto");
    expect(await collect(nodeParsedBody(raw)!)).toEqual([1, 2]);
    const text = await parsedRequest("é", "application/json");
    expect(await collect(nodeParsedBody(text)!)).toEqual([0xc3, 0xa9]);
  });

  it("re-serializes parsed JSON, for a JSON content type only", async () => {
    const json = await parsedRequest(
      { a: 1 },
      "application/json; charset=utf-8",
    );
    expect(
      new TextDecoder().decode(
        Buffer.from(await collect(nodeParsedBody(json)!)),
      ),
    ).toBe('{"a":1}');
    const form = await parsedRequest(
      { a: "1" },
      "application/x-www-form-urlencoded",
    );
    await expect(collect(nodeParsedBody(form)!)).rejects.toMatchObject({
      code: Code.Internal,
    });
  });

  it("fails with internal, naming the cause, when nothing was kept", async () => {
    // An empty body ends without a data event.
    const drained = await parsedRequest(undefined, "application/proto", []);
    const error: unknown = await collect(nodeParsedBody(drained)!).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect((error as ConnectError).message).toContain("express.json()");
  });
});
