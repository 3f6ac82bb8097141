/** The part of a Node writable (an HTTP response, an HTTP/2 stream) that drain waits on. */
export interface NodeDrainable {
  on(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/**
 * Resolves when a writable that refused more data has drained, or has
 * closed (then the writer finds out on its next write).
 */
export function nodeDrained(writable: NodeDrainable): Promise<void> {
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
