import { Code } from "./code.ts";
import { ConnectError } from "./errors.ts";

// The longest delay setTimeout takes as given.
const deadlineMaxTimerMs = 2 ** 31 - 1;

/** The signal of one call and how to release what watches it. */
export interface Deadline {
  /** Aborts with a ConnectError: Canceled when the parent aborts, DeadlineExceeded when time runs out. */
  readonly signal: AbortSignal;
  /** Milliseconds left, or undefined without a timeout. */
  remainingMs(): number | undefined;
  /** Settles rejected (with the abort reason) once the signal aborts; the same promise every time. */
  aborted(): Promise<never>;
  cleanup(): void;
}

/**
 * A server call's deadline. Without a timeout it is the request's own
 * signal, which the server adapters abort with a Canceled ConnectError: no
 * second controller, listener or timer for the common call without one.
 */
export function deadlineForRequest(
  timeoutMs: number | undefined,
  requestSignal: AbortSignal,
): Deadline {
  if (timeoutMs !== undefined) {
    return deadlineStart(timeoutMs, requestSignal);
  }
  let abortedPromise: Promise<never> | undefined;
  return {
    signal: requestSignal,
    remainingMs: deadlineNone,
    aborted: () => (abortedPromise ??= deadlineAborted(requestSignal)),
    cleanup: deadlineNone,
  };
}

// remainingMs and cleanup of a call without a timeout: one function for all.
function deadlineNone(): undefined {}

/** Settles rejected with the reason, as a ConnectError, once the signal aborts. */
function deadlineAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    const fail = () => reject(ConnectError.from(signal.reason, Code.Canceled));
    if (signal.aborted) {
      fail();
    } else {
      signal.addEventListener("abort", fail, { once: true });
    }
  });
}

/**
 * Aborts `controller` when `parent` aborts (with Canceled) or when
 * `timeoutMs` has passed (with DeadlineExceeded); returns the function that
 * stops watching. All a client call needs: deadlineStart adds what a server
 * needs, and a browser bundle carries only this.
 */
export function deadlineWatch(
  controller: AbortController,
  timeoutMs: number | undefined,
  parent: AbortSignal | undefined,
  end = timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
): () => void {
  const onParentAbort = () =>
    controller.abort(
      ConnectError.from(
        parent?.reason ?? "the call was canceled",
        Code.Canceled,
      ),
    );
  if (parent?.aborted === true) {
    onParentAbort();
  } else {
    parent?.addEventListener("abort", onParentAbort, { once: true });
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Timers fire at once past 2^31-1 ms (24.8 days): a longer deadline
  // re-arms until it is really due.
  const arm = () => {
    const left = end! - Date.now();
    if (left > deadlineMaxTimerMs) {
      timer = setTimeout(arm, deadlineMaxTimerMs);
      return;
    }
    timer = setTimeout(
      () =>
        controller.abort(
          new ConnectError(
            `the call exceeded its ${timeoutMs} ms deadline`,
            Code.DeadlineExceeded,
          ),
        ),
      Math.max(0, left),
    );
  };
  if (end !== undefined) arm();
  return () => {
    clearTimeout(timer);
    parent?.removeEventListener("abort", onParentAbort);
  };
}

/**
 * A server call's signal with a timeout: it follows `parent` (the
 * connection's signal) and fires at the deadline, each with the error the
 * call must end with.
 */
export function deadlineStart(
  timeoutMs: number | undefined,
  parent: AbortSignal | undefined,
): Deadline {
  const controller = new AbortController();
  const signal = controller.signal;
  const end = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  const cleanup = deadlineWatch(controller, timeoutMs, parent, end);
  let abortedPromise: Promise<never> | undefined;
  return {
    signal,
    remainingMs: () => (end === undefined ? undefined : end - Date.now()),
    // One promise per call: a stream races it once per message, and a new
    // listener each time would pile up until the call ends.
    aborted: () => (abortedPromise ??= deadlineAborted(signal)),
    cleanup,
  };
}
