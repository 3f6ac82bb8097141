import type {
  Http2SecureServer,
  Http2Server,
  Http2Session,
  ServerHttp2Session,
} from "node:http2";

/** @public */
export interface Http2ServerKeepaliveOptions {
  /** Send a PING on a session that has received nothing for this many milliseconds. */
  readonly pingIntervalMs: number;
  /**
   * How long a PING may go unacknowledged before the session is destroyed.
   * Default 20 seconds, as in gRPC.
   */
  readonly pingTimeoutMs?: number;
}

/**
 * Refuses a keepalive duration that is not a positive number of
 * milliseconds, when the option is given rather than at the first ping:
 * 0 or NaN would ping without pause, a negative one never.
 */
export function keepaliveCheckMs(name: string, value: number): void {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(
      `${name} must be a positive, finite number of milliseconds, got ${String(value)}`,
    );
  }
}

/**
 * Finds the clients of a node:http2 server that went away without a word
 * (a load balancer between dropped the connection): pings each session
 * that has received nothing for `pingIntervalMs`, and destroys one that leaves a PING unanswered
 * for `pingTimeoutMs`. The calls in flight on it end as if the client had
 * gone: their `context.signal` aborts. Call it once, before `listen`.
 * @public
 */
export function http2ServerKeepalive(
  server: Http2Server | Http2SecureServer,
  options: Http2ServerKeepaliveOptions,
): void {
  keepaliveCheckMs("pingIntervalMs", options.pingIntervalMs);
  const timeoutMs = options.pingTimeoutMs ?? 20_000;
  keepaliveCheckMs("pingTimeoutMs", timeoutMs);
  server.on("session", (session: ServerHttp2Session) => {
    http2KeepAlive(session, options.pingIntervalMs, timeoutMs, () =>
      session.destroy(),
    );
  });
}

/**
 * Pings a session once it has read nothing for `intervalMs`, and calls
 * `dead` when a PING goes unacknowledged for `timeoutMs`. A session that
 * keeps receiving is evidently alive and is not pinged. The timers never
 * hold the process open, and stop when the session closes.
 */
export function http2KeepAlive(
  session: Http2Session,
  intervalMs: number,
  timeoutMs: number,
  dead: () => void,
): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = (f: () => void, ms: number) => {
    timer = setTimeout(f, ms);
    timer.unref();
  };
  const open = () => !session.closed && !session.destroyed;
  // What the socket has read, checked once an interval rather than per read.
  // Runtimes whose sessions have no socket are pinged every interval.
  const bytesRead = (): number | undefined => session.socket?.bytesRead;
  let seen = bytesRead();
  const ping = () => {
    if (!open()) return;
    // Node cancels a PING sent before the socket connects.
    if (session.connecting) {
      session.once("connect", ping);
      return;
    }
    const read = bytesRead();
    if (read !== undefined && read !== seen) {
      seen = read;
      later(ping, intervalMs);
      return;
    }
    later(dead, timeoutMs);
    const sent = session.ping(() => {
      clearTimeout(timer);
      seen = bytesRead();
      // Acknowledged, or cancelled because the session closed.
      if (open()) later(ping, intervalMs);
    });
    // Too many PINGs unanswered already (Node's maxOutstandingPings).
    if (!sent) {
      clearTimeout(timer);
      later(ping, intervalMs);
    }
  };
  later(ping, intervalMs);
  session.once("close", () => clearTimeout(timer));
}
