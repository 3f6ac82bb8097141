import type { ServerStreamBody } from "../server/stream.ts";

/** The part of a Node writable (an HTTP response, an HTTP/2 stream) that writing chunks needs. */
export interface NodeDrainable {
  write(chunk: Uint8Array): boolean;
  /** Set once the writable is destroyed: no "drain" or "close" comes after. */
  readonly destroyed: boolean;
  on(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/**
 * Resolves when a writable that refused more data has drained, or has
 * closed (then the writer finds out on its next write).
 */
export function nodeDrained(writable: NodeDrainable): Promise<void> {
  // Destroyed already, it may have closed before we listen: waiting would
  // never end.
  if (writable.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const go = () => {
      writable.off("drain", go);
      writable.off("close", go);
      resolve();
    };
    writable.on("drain", go);
    writable.on("close", go);
  });
}

/**
 * Writes chunks as they come, waiting for the writable to drain before
 * asking for more, so a slow client holds back the producer instead of
 * filling memory. Stopping the loop early (client gone) stops the producer;
 * false then, as there is nothing left to end. A signal aborted with
 * `shutdown.reason` (a graceful shutdown's, read as it happens) does not
 * stop it: the body then ends with the call's error, for the client.
 *
 * A streamed server response pushes its chunks itself (one loop from the
 * implementation to the writable); any other body is pulled.
 */
export async function nodeWriteChunks(
  writable: NodeDrainable,
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  shutdown?: { readonly reason: unknown },
): Promise<boolean> {
  const stopped = () =>
    writable.destroyed ||
    (signal.aborted && signal.reason !== shutdown?.reason);
  if (nodeIsPushBody(body)) {
    return body.pushTo({
      write: (chunk) => writable.write(chunk),
      drained: () => nodeDrained(writable),
      stopped,
    });
  }
  for await (const chunk of body) {
    if (stopped()) return false;
    if (!writable.write(chunk)) {
      await nodeDrained(writable);
      if (stopped()) return false;
    }
  }
  return true;
}

// By its shape: naming serverWriteStream here would copy the streaming
// code into every generated file that serves Node.
function nodeIsPushBody(
  body: AsyncIterable<Uint8Array>,
): body is ServerStreamBody {
  return typeof (body as Partial<ServerStreamBody>).pushTo === "function";
}
