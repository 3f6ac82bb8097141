import type { Readable } from "node:stream";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { bodyTooLarge } from "../core/body.ts";
import { handlerBodyFailed } from "../server/handler.ts";

/**
 * A Node request body (node:http, the HTTP/2 compatibility request, or a raw
 * HTTP/2 stream) as an async iterable, read through its events. Node's own
 * async iterator costs a few microseconds per request (end-of-stream
 * tracking with half a dozen listeners), a large share of a small unary
 * call. Nothing is read until iteration starts; the stream is paused while
 * a chunk waits for the consumer, so a slow consumer holds back the client.
 * Leaving the loop early (a message over the limit, a call that fails)
 * discards the rest of the body, as Node does with a body nobody reads: the
 * connection must survive to carry the error response, and on HTTP/1.1 the
 * next request follows the body on the same connection.
 */
export function nodeBody(source: Readable): AsyncIterable<Uint8Array> {
  return { [Symbol.asyncIterator]: () => nodeBodyIterator(source) };
}

function nodeBodyIterator(source: Readable): AsyncIterator<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failure: unknown = undefined;
  let wake: (() => void) | undefined = undefined;
  const settle = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Uint8Array) => {
    chunks.push(chunk);
    if (wake === undefined) source.pause();
    else settle();
  };
  const onEnd = () => {
    // An HTTP/2 stream that the client reset before END_STREAM also ends
    // its body (Node pushes the end when the stream closes, and the
    // compatibility request on any close), but only after marking it
    // aborted: what arrived is part of an upload, never all of it.
    if ((source as { aborted?: boolean }).aborted === true) {
      onClose();
      return;
    }
    ended = true;
    settle();
  };
  const onError = (error: unknown) => {
    failure ??= handlerBodyFailed(error);
    settle();
  };
  // A stream reset or a dropped connection closes the request without an
  // end (and not always with an error): the client has gone away.
  const onClose = () => {
    if (!ended) {
      failure ??= new ConnectError(
        "the request body ended early: the client went away",
        Code.Canceled,
      );
    }
    settle();
  };
  const detach = () => {
    source.off("data", onData);
    source.off("end", onEnd);
    source.off("error", onError);
    source.off("close", onClose);
  };
  source.on("data", onData);
  source.on("end", onEnd);
  source.on("error", onError);
  source.on("close", onClose);
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    for (;;) {
      const chunk = chunks.shift();
      if (chunk !== undefined) {
        return { done: false, value: chunk };
      }
      if (failure !== undefined) {
        detach();
        throw failure;
      }
      if (ended) {
        detach();
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        source.resume();
      });
    }
  };
  return {
    next,
    async return() {
      detach();
      if (!ended) source.resume();
      return { done: true, value: undefined };
    },
  };
}

/**
 * A whole Node request body, for a unary call: what `readBody(nodeBody(source))`
 * returns and throws, read through 'data' and 'end' with one promise per
 * body rather than one per chunk and an async iterator around them (a
 * tenth of a small call's instructions). Past `maxBytes` it fails at once
 * and discards the rest of the body, as leaving nodeBody's loop does.
 */
export function nodeReadBody(
  source: Readable,
  maxBytes: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let length = 0;
    const finish = (failure: unknown) => {
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("error", onError);
      source.off("close", onClose);
      if (failure === undefined) {
        resolve(nodeJoinChunks(chunks, length));
        return;
      }
      // Left flowing with no reader: the rest of the body is discarded.
      if (!source.readableEnded) source.resume();
      reject(failure);
    };
    const onData = (chunk: Uint8Array) => {
      length += chunk.byteLength;
      if (length > maxBytes) finish(bodyTooLarge(maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      // As in nodeBody: a reset HTTP/2 stream ends its body once aborted.
      if ((source as { aborted?: boolean }).aborted === true) onClose();
      else finish(undefined);
    };
    const onError = (error: unknown) => finish(handlerBodyFailed(error));
    const onClose = () =>
      finish(
        new ConnectError(
          "the request body ended early: the client went away",
          Code.Canceled,
        ),
      );
    source.on("data", onData);
    source.on("end", onEnd);
    source.on("error", onError);
    source.on("close", onClose);
  });
}

function nodeJoinChunks(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) {
    // A plain view, not the chunk: Node streams yield Buffers, which would
    // otherwise end up as the bytes fields of decoded messages.
    const only = chunks[0]!;
    return new Uint8Array(only.buffer, only.byteOffset, only.byteLength);
  }
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

/**
 * The body of a request whose stream was read before the handler saw it: by
 * a body parser (Express's `express.json()`, `express.raw()`,
 * `express.text()`) that left what it read in `request.body`. Undefined
 * while the stream is unread, as it is behind a parser that skipped the
 * request's content type. Such parsers undo `Content-Encoding`: the bytes
 * returned are the identity encoding.
 */
export function nodeParsedBody(
  request: Readable & {
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    readonly body?: unknown;
  },
): AsyncIterable<Uint8Array> | undefined {
  // An empty body ends without emitting data.
  if (!request.readableDidRead && !request.readableEnded) return undefined;
  const parsed = request.body;
  let bytes: Uint8Array | undefined;
  if (parsed instanceof Uint8Array) {
    bytes = parsed;
  } else if (typeof parsed === "string") {
    bytes = new TextEncoder().encode(parsed);
  } else if (
    parsed !== undefined &&
    /^application\/json\s*(;|$)/i.test(String(request.headers["content-type"]))
  ) {
    // What express.json() parsed; the same message, if not the same bytes.
    bytes = new TextEncoder().encode(JSON.stringify(parsed));
  }
  return {
    async *[Symbol.asyncIterator]() {
      if (bytes === undefined) {
        // Internal: the server is set up wrong, and no change to the
        // request would help (failed_precondition would tell the client to
        // fix something on its side).
        throw new ConnectError(
          "the request body was read before this handler: a body parser such as express.json() ran first; mount the service before it, or limit the parser to other routes",
          Code.Internal,
        );
      }
      yield bytes;
    },
  };
}
