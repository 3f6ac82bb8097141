import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";

/**
 * What `shutdownGracefully` stops: a `node:http`, `node:https` or
 * `node:http2` server (the one `app.listen()` returns in Express,
 * `app.server` in Fastify).
 * @public
 */
export interface ShutdownServer {
  close(callback?: (error?: Error) => void): unknown;
  /** node:http(s) only: closes keep-alive connections with no request. */
  closeIdleConnections?(): void;
  /** node:http(s) only. */
  closeAllConnections?(): void;
}

/** @public */
export interface ShutdownOptions {
  /**
   * How long calls in flight may run on before their `context.signal`
   * aborts with an `unavailable` ConnectError ("the server is shutting
   * down"). Default 5000.
   */
  readonly graceMs?: number;
  /**
   * How long after that calls may take to end (a streaming implementation
   * to return, its error to reach the client) before their connections are
   * destroyed. Default 2000.
   */
  readonly forceMs?: number;
  /** Ends the grace period early when it aborts (a second SIGTERM, say). */
  readonly signal?: AbortSignal;
}

/** What a response target needs for shutdown to end it by force. */
export interface NodeTrackedResponse {
  destroy(): unknown;
  /** An HTTP/2 stream's session, which gets a GOAWAY and, by force, goes. */
  readonly session?: { close(): void; destroy(): void } | undefined;
}

/** What shutdown aborts a call's signal through. */
export interface NodeTrackedCall {
  abort(reason: unknown): void;
}

/**
 * The calls in flight on one server, kept on the server object under a
 * registry symbol so that the Node entry points of every generated file
 * (each carries its own copy of this code) share it: its shape is a
 * contract between copies, hence the version in the key.
 */
export interface NodeCallTracker {
  /**
   * Each call, by what aborts its signal (an AbortController, or anything
   * with its `abort`), with where its response goes.
   */
  readonly calls: Map<NodeTrackedCall, NodeTrackedResponse>;
  /** Set when a shutdown begins: HTTP/1.1 responses then close their connection. */
  closing: boolean;
  /**
   * Set when the grace period is over: what the calls' signals are aborted
   * with, and a call that still arrives (HTTP/1.1) at once.
   */
  reason: unknown;
  /** Set during a shutdown: told of each call that ends. */
  ended: (() => void) | undefined;
  /** The shutdown in progress, which a second call joins. */
  shutdown: Promise<void> | undefined;
}

const nodeTrackerKey = Symbol.for("connect-standalone.calls-in-flight.v1");

/** The tracker of a server's calls, made on its first call. */
export function nodeCallTracker(server: object): NodeCallTracker {
  const holder = server as { [nodeTrackerKey]?: NodeCallTracker };
  return (holder[nodeTrackerKey] ??= {
    calls: new Map(),
    closing: false,
    reason: undefined,
    ended: undefined,
    shutdown: undefined,
  });
}

/**
 * Shuts a Node server down gracefully: it stops accepting connections,
 * sends HTTP/2 sessions a GOAWAY (new streams are refused, open ones go
 * on), closes idle HTTP/1.1 keep-alive connections and answers the requests
 * still to come on the others with `Connection: close`. Calls in flight
 * (served by `.node`, `.http2Stream`, `.fastify` or `nodeHandler()` of any
 * generated file) run on; after `graceMs` their `context.signal` aborts
 * with an `unavailable` ConnectError, which clients may retry, so that
 * streaming implementations end. Resolves once every call has ended and the
 * server has closed; connections still open `forceMs` later are destroyed.
 * Calls served through `.fetch` are the fetch server's to drain.
 * @public
 */
export function shutdownGracefully(
  server: ShutdownServer,
  options: ShutdownOptions = {},
): Promise<void> {
  const tracker = nodeCallTracker(server);
  return (tracker.shutdown ??= nodeShutdown(
    server,
    tracker,
    options.graceMs ?? 5000,
    options.forceMs ?? 2000,
    options.signal,
  ));
}

async function nodeShutdown(
  server: ShutdownServer,
  tracker: NodeCallTracker,
  graceMs: number,
  forceMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  tracker.closing = true;
  // Node's http2 server sends each session a GOAWAY on close() itself; the
  // sessions of calls in flight get one here too, for older versions.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections?.();
  const calls = tracker.calls;
  for (const response of calls.values()) response.session?.close();
  let wake = () => {};
  const drained = new Promise<void>((resolve) => (wake = resolve));
  tracker.ended = () => {
    if (calls.size === 0) wake();
  };
  tracker.ended();
  const force = () => {
    for (const response of calls.values()) {
      if (response.session !== undefined) response.session.destroy();
      else response.destroy();
    }
    server.closeAllConnections?.();
    wake();
  };
  let forceTimer: ReturnType<typeof setTimeout> | undefined;
  const endGrace = () => {
    if (tracker.reason !== undefined) return;
    const reason = new ConnectError(
      "the server is shutting down",
      Code.Unavailable,
    );
    tracker.reason = reason;
    for (const controller of calls.keys()) controller.abort(reason);
    forceTimer = setTimeout(force, forceMs);
  };
  const graceTimer = setTimeout(endGrace, graceMs);
  if (signal?.aborted === true) endGrace();
  signal?.addEventListener("abort", endGrace);
  await drained;
  clearTimeout(graceTimer);
  signal?.removeEventListener("abort", endGrace);
  // Every call has ended; a connection Node still keeps (a request that is
  // no call of ours, a client that does not close after Connection: close)
  // gets forceMs before it is destroyed.
  server.closeIdleConnections?.();
  clearTimeout(forceTimer);
  const last = setTimeout(force, forceMs);
  await closed;
  clearTimeout(last);
  tracker.ended = undefined;
}
