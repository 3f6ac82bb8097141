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
  /**
   * Settles as `promise` does, unless the signal aborts first: then rejects
   * at once with the abort reason (a ConnectError), so that a stalled
   * implementation cannot hold a call past its deadline or its cancel. One
   * race at a time (a stream races each of its messages in turn).
   */
  race<T>(promise: Promise<T>): Promise<T>;
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
  return {
    signal: requestSignal,
    remainingMs: deadlineNone,
    race: deadlineRacer(requestSignal),
    cleanup: deadlineNone,
  };
}

// remainingMs and cleanup of a call without a timeout: one function for all.
function deadlineNone(): undefined {}

/**
 * `Deadline.race` for one call's signal. Racing each message against one
 * promise that settles on abort (`Promise.race([next, aborted])`) would
 * leave a reaction on that promise per message, kept until the call ends:
 * hundreds of MiB for a stream of a million messages. Here the signal gets
 * one listener, on first use, which rejects the race in progress; each race
 * makes one promise that nothing refers to once it has settled and been
 * replaced by the next. The listener goes with the signal, which is the
 * call's own (or its request's).
 */
function deadlineRacer(
  signal: AbortSignal,
): <T>(promise: Promise<T>) => Promise<T> {
  // The reject of the latest race: a no-op once that race has settled.
  let interrupt: ((reason: unknown) => void) | undefined;
  return <T>(promise: Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      promise.then(resolve, reject);
      if (signal.aborted) {
        reject(ConnectError.from(signal.reason, Code.Canceled));
        return;
      }
      if (interrupt === undefined) {
        signal.addEventListener(
          "abort",
          () => interrupt!(ConnectError.from(signal.reason, Code.Canceled)),
          { once: true },
        );
      }
      interrupt = reject;
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
  return {
    signal,
    remainingMs: () => (end === undefined ? undefined : end - Date.now()),
    race: deadlineRacer(signal),
    cleanup,
  };
}
