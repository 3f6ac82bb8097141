import type { Http2ServerResponse } from "node:http2";
import {
  handlerNotFound,
  type ServerResponse,
  type ServiceHandler,
} from "../server/handler.ts";
import { NodeCallSignal } from "./call-signal.ts";
import type { NodeServerRequest } from "./request.ts";
import { nodeRespond, type NodeResponseTarget } from "./respond.ts";
import { nodeCallTracker, type NodeCallTracker } from "./shutdown.ts";

/**
 * One call served by a Node entry point, from routing to the response's
 * end: its signal (NodeCallSignal), the handler that serves it, and where
 * its response goes. A class with continuations rather than an async
 * function: a unary call whose response is written whole waits for the
 * handler's promise only, with no frame, promise or microtask of its own
 * (an async function here was about 900 of a small h2c call's 13.4 KB
 * allocated).
 */
export class NodeCall extends NodeCallSignal {
  readonly #handlers: readonly ServiceHandler[];
  readonly #response: NodeResponseTarget;
  readonly #compat: Http2ServerResponse | undefined;
  readonly #next: ((error?: unknown) => void) | undefined;
  /** The server's calls in flight, for shutdownGracefully. */
  readonly #tracker: NodeCallTracker | undefined;
  #request: NodeServerRequest | undefined = undefined;
  /** The first handler not yet asked. */
  #handler = 0;

  constructor(
    handlers: readonly ServiceHandler[],
    response: NodeResponseTarget,
    compat: Http2ServerResponse | undefined,
    next: ((error?: unknown) => void) | undefined,
    server: object | undefined,
  ) {
    super(response);
    this.#handlers = handlers;
    this.#response = response;
    this.#compat = compat;
    this.#next = next;
    // A map entry per call: the server's tracker is shared with the entry
    // points of every generated file.
    const tracker = server === undefined ? undefined : nodeCallTracker(server);
    this.#tracker = tracker;
    if (tracker !== undefined) {
      tracker.calls.set(this, response);
      // Past a shutdown's grace period (HTTP/1.1: HTTP/2 refuses new streams).
      if (tracker.reason !== undefined) this.abort(tracker.reason);
    }
  }

  /** Asks the handlers in turn, each whose path prefixes the request's. */
  serve(request: NodeServerRequest): void {
    this.#request = request;
    const handlers = this.#handlers;
    while (this.#handler < handlers.length) {
      const handler = handlers[this.#handler++]!;
      // A handler answers undefined for a path not its own: not asking
      // those saves a promise each.
      if (!request.path.startsWith(handler.path)) continue;
      let answer: Promise<ServerResponse | undefined>;
      try {
        answer = handler.handle(request);
      } catch (error) {
        this.#fail(error);
        return;
      }
      answer.then(
        (response) => this.#answer(response),
        (error: unknown) => this.#fail(error),
      );
      return;
    }
    this.#answer(undefined);
  }

  #answer(result: ServerResponse | undefined): void {
    const request = this.#request!;
    if (result === undefined) {
      if (this.#handler < this.#handlers.length) {
        this.serve(request);
        return;
      }
      if (this.#next !== undefined) {
        this.#end();
        this.#next();
        return;
      }
      result = handlerNotFound(request.path);
    }
    // No one to answer; a call aborted by a shutdown still answers (with
    // its error).
    if (this.clientGone()) {
      this.#untrack();
      return;
    }
    let streaming: Promise<void> | undefined;
    try {
      streaming = nodeRespond(
        this.#response,
        result,
        this.#compat,
        this,
        this.#tracker,
        request.source,
      );
    } catch (error) {
      this.#fail(error);
      return;
    }
    if (streaming === undefined) {
      this.#end();
    } else {
      streaming.then(
        () => this.#end(),
        (error: unknown) => this.#fail(error),
      );
    }
  }

  /** The response is complete (or handed to `next`): a close is no cancel now. */
  #end(): void {
    this.complete = true;
    this.#untrack();
  }

  /**
   * Writing the response failed (a header Node refuses, a stream error):
   * the connection is torn down rather than crashing the process.
   */
  #fail(error: unknown): void {
    this.#untrack();
    this.#response.destroy(error instanceof Error ? error : undefined);
  }

  #untrack(): void {
    const tracker = this.#tracker;
    if (tracker !== undefined) {
      tracker.calls.delete(this);
      tracker.ended?.();
    }
  }
}
