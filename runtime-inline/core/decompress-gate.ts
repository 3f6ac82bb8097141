import { Code } from "./code.ts";
import type { Compression } from "./compression.ts";
import { ConnectError } from "./errors.ts";

/**
 * Bounds how many request messages one handler decompresses at once, across
 * all its calls. Each decompression may grow to `readMaxBytes` (and holds a
 * decoder context besides) whatever the size of its input, so that a flood
 * of small compressed requests (decompression bombs, each within the limit)
 * cannot hold thousands of them in memory together. Past the slots, requests
 * wait in a bounded queue, holding only their compressed bytes; past the
 * queue, they fail with ResourceExhausted. Calls without compression never
 * come here.
 */
export interface DecompressGate {
  decompress(
    compression: Compression,
    data: Uint8Array,
    readMaxBytes: number,
    signal: AbortSignal,
  ): Promise<Uint8Array>;
}

/** Default budget of bytes being decompressed at once per handler: 32 MiB, 8 messages at the default 4 MiB limit. */
export const decompressDefaultBudget = 32 * 1024 * 1024;

/** Default number of requests that may wait for a decompression slot. */
export const decompressDefaultQueue = 256;

/**
 * A gate with `floor(budgetBytes / readMaxBytes)` slots (at least one): the
 * budget counts each decompression at the most it may produce.
 */
export function decompressGate(
  budgetBytes: number,
  readMaxBytes: number,
  queueMax: number,
): DecompressGate {
  const slots = Math.max(
    1,
    Math.floor(budgetBytes / Math.max(1, readMaxBytes)),
  );
  let active = 0;
  // Each waiter is woken with the slot already handed over to it.
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else active--;
  };
  return {
    async decompress(compression, data, limit, signal) {
      if (active < slots) {
        active++;
      } else {
        if (waiting.length >= queueMax) {
          throw new ConnectError(
            `server busy: more than ${slots + queueMax} compressed messages waiting to be decompressed`,
            Code.ResourceExhausted,
          );
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
        // A client that went away while queued costs no decompression.
        if (signal.aborted) {
          release();
          throw ConnectError.from(signal.reason, Code.Canceled);
        }
      }
      try {
        return await compression.decompress(data, limit);
      } finally {
        release();
      }
    },
  };
}
