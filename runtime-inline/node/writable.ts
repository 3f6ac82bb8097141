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
 * false then, as there is nothing left to end.
 */
export async function nodeWriteChunks(
  writable: NodeDrainable,
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): Promise<boolean> {
  for await (const chunk of body) {
    if (signal.aborted || writable.destroyed) return false;
    if (!writable.write(chunk)) {
      await nodeDrained(writable);
      if (signal.aborted || writable.destroyed) return false;
    }
  }
  return true;
}
