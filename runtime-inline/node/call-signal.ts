import { handlerClientGone } from "../server/handler.ts";

/** What a call's signal watches: the response, which closes when the client goes. */
export interface NodeCallResponse {
  readonly closed: boolean;
  readonly destroyed: boolean;
  once(event: "close", listener: () => void): unknown;
}

/**
 * The signal of one call served by a Node entry point, made on first use:
 * most unary implementations never look at it, and an AbortController with
 * a 'close' listener per call is a few percent of a small call. Until then
 * the response's state answers for it: a signal made after the client went
 * away is aborted already, and one made before aborts when it goes. It is
 * also the call's key in the shutdown tracker, which aborts it (`abort`).
 */
export class NodeCallSignal {
  /** Set once the response is complete: a close after that is no cancel. */
  complete = false;
  readonly #response: NodeCallResponse;
  #controller: AbortController | undefined = undefined;
  /** What shutdown aborted the call with before its signal was made. */
  #shutdown: { readonly reason: unknown } | undefined = undefined;

  constructor(response: NodeCallResponse) {
    this.#response = response;
  }

  get signal(): AbortSignal {
    return (this.#controller ??= this.#makeController()).signal;
  }

  /** Aborts the signal, now or as soon as it is made (shutdown's grace period is over). */
  abort(reason: unknown): void {
    const controller = this.#controller;
    // What aborted first stays the reason, as with an AbortController.
    if (
      this.#shutdown === undefined &&
      !(controller === undefined ? this.#gone() : controller.signal.aborted)
    ) {
      this.#shutdown = { reason };
    }
    controller?.abort(reason);
  }

  /**
   * Whether the client went away before the response was complete, so that
   * there is no one to answer; a call aborted by a shutdown still answers.
   */
  clientGone(): boolean {
    const controller = this.#controller;
    if (controller === undefined) return this.#gone();
    return (
      controller.signal.aborted &&
      (this.#shutdown === undefined ||
        controller.signal.reason !== this.#shutdown.reason)
    );
  }

  #gone(): boolean {
    return (
      !this.complete && (this.#response.closed || this.#response.destroyed)
    );
  }

  #makeController(): AbortController {
    const controller = new AbortController();
    if (this.#shutdown !== undefined) {
      controller.abort(this.#shutdown.reason);
    } else if (this.#gone()) {
      controller.abort(handlerClientGone());
    } else {
      this.#response.once("close", () => {
        if (!this.complete) controller.abort(handlerClientGone());
      });
    }
    return controller;
  }
}
