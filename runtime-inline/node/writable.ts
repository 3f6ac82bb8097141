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
 */
export async function nodeWriteChunks(
  writable: NodeDrainable,
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  shutdown?: { readonly reason: unknown },
): Promise<boolean> {
  for await (const chunk of body) {
    if (
      writable.destroyed ||
      (signal.aborted && signal.reason !== shutdown?.reason)
    )
      return false;
    if (!writable.write(chunk)) {
      await nodeDrained(writable);
      if (
        writable.destroyed ||
        (signal.aborted && signal.reason !== shutdown?.reason)
      )
        return false;
    }
  }
  return true;
}
