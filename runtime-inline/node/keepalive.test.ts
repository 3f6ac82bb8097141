import { EventEmitter } from "node:events";
import * as http2 from "node:http2";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  http2KeepAlive,
  http2ServerKeepalive,
  keepaliveCheckMs,
} from "./keepalive.ts";
import { blackholeProxy } from "../../test/support/blackhole-proxy.ts";
import { listenH2c } from "../../test/support/h2c-server.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** An h2c server that never answers its streams, recording what happens to them. */
async function silentServer(keepalive: boolean) {
  const server = http2.createServer();
  if (keepalive) {
    http2ServerKeepalive(server, { pingIntervalMs: 50, pingTimeoutMs: 100 });
  }
  const events: string[] = [];
  server.on("session", (session) => {
    session.on("close", () => events.push("session close"));
  });
  server.on("stream", (stream) => {
    events.push("stream");
    stream.on("close", () => events.push("stream close"));
  });
  const { port, close } = await listenH2c(server);
  closers.push(close);
  return { port, events };
}

function connect(url: string) {
  const client = http2.connect(url);
  client.on("error", () => {});
  closers.push(() => client.destroy());
  const pings: number[] = [];
  client.on("ping", () => pings.push(pings.length));
  const stream = client.request({ ":method": "POST", ":path": "/x" });
  stream.on("error", () => {});
  return { client, pings };
}

describe("keepaliveCheckMs", () => {
  it("takes positive finite milliseconds and names an option that is not", () => {
    expect(() => keepaliveCheckMs("pingIntervalMs", 1)).not.toThrow();
    expect(() => keepaliveCheckMs("pingIntervalMs", 30_000)).not.toThrow();
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => keepaliveCheckMs("pingTimeoutMs", bad)).toThrow(
        `pingTimeoutMs must be a positive, finite number of milliseconds, got ${String(bad)}`,
      );
    }
    expect(() =>
      keepaliveCheckMs("idleTimeoutMs", "5" as unknown as number),
    ).toThrow(RangeError);
  });

  it("is applied when a server's keepalive is set up, before any session", () => {
    const server = http2.createServer();
    expect(() => http2ServerKeepalive(server, { pingIntervalMs: 0 })).toThrow(
      /pingIntervalMs must be a positive/,
    );
    expect(() =>
      http2ServerKeepalive(server, { pingIntervalMs: 10, pingTimeoutMs: -5 }),
    ).toThrow(/pingTimeoutMs must be a positive/);
    expect(server.listenerCount("session")).toBe(0);
  });
});

describe("http2ServerKeepalive", () => {
  it("pings sessions, and destroys one whose client stops answering, closing its streams", async () => {
    const { port, events } = await silentServer(true);
    const proxy = await blackholeProxy(port);
    closers.push(proxy.close);
    const { client, pings } = connect(proxy.url);
    // Answered PINGs keep the session: two go by with the stream open.
    await vi.waitFor(() => expect(pings.length).toBe(2));
    expect(events).toEqual(["stream"]);
    proxy.blackhole();
    await vi.waitFor(() =>
      expect(events).toEqual(["stream", "stream close", "session close"]),
    );
    // The client, whose bytes go nowhere, knows nothing of it.
    expect(client.closed || client.destroyed).toBe(false);
  });
});

describe("http2KeepAlive", () => {
  it("calls dead once a PING goes unanswered, never while they are answered", async () => {
    const { port } = await silentServer(false);
    const proxy = await blackholeProxy(port);
    closers.push(proxy.close);
    const { client } = connect(proxy.url);
    const order: string[] = [];
    // Node answers PINGs itself: count the acknowledgements through ping's callback.
    const ping = client.ping.bind(client);
    vi.spyOn(client, "ping").mockImplementation((...args: unknown[]) => {
      const callback = args[args.length - 1] as (
        err: Error | null,
        duration: number,
        payload: Buffer,
      ) => void;
      return ping((err, duration, payload) => {
        order.push(err === null ? "ack" : "cancelled");
        callback(err, duration, payload);
      });
    });
    http2KeepAlive(client, 50, 100, () => {
      order.push("dead");
      client.destroy();
    });
    await vi.waitFor(() => expect(order).toEqual(["ack", "ack"]));
    proxy.blackhole();
    await vi.waitFor(() => expect(order).toContain("dead"));
    expect(order.slice(0, 2)).toEqual(["ack", "ack"]);
    expect(order.filter((e) => e === "dead")).toEqual(["dead"]);
  });
});

describe("http2KeepAlive with fake timers", () => {
  /** A session's surface http2KeepAlive uses; PINGs are answered by `ack`. */
  function fakeSession() {
    const emitter = new EventEmitter();
    const acks: ((err: Error | null) => void)[] = [];
    let sent = 0;
    const session = Object.assign(emitter, {
      closed: false,
      destroyed: false,
      connecting: false,
      socket: { bytesRead: 0 },
      ping(callback: (err: Error | null) => void) {
        acks.push(callback);
        sent++;
        return true;
      },
    });
    return {
      session,
      sent: () => sent,
      ack: () => {
        session.socket.bytesRead += 17;
        acks.shift()!(null);
      },
    };
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it("pings only a session that read nothing for an interval, and calls dead after an unanswered one", () => {
    vi.useFakeTimers();
    const { session, sent, ack } = fakeSession();
    const dead = vi.fn();
    http2KeepAlive(session as unknown as http2.Http2Session, 100, 50, dead);
    vi.advanceTimersByTime(100);
    expect(sent()).toBe(1);
    ack();
    // Bytes keep coming: no PING is needed.
    for (let i = 0; i < 5; i++) {
      session.socket.bytesRead += 100;
      vi.advanceTimersByTime(100);
    }
    expect(sent()).toBe(1);
    // Silence for an interval: the next PING, left unanswered.
    vi.advanceTimersByTime(100);
    expect(sent()).toBe(2);
    expect(dead).not.toHaveBeenCalled();
    vi.advanceTimersByTime(50);
    expect(dead).toHaveBeenCalledTimes(1);
  });

  it("waits for the socket to connect, and stops once the session closes", () => {
    vi.useFakeTimers();
    const { session, sent } = fakeSession();
    session.connecting = true;
    const dead = vi.fn();
    http2KeepAlive(session as unknown as http2.Http2Session, 100, 50, dead);
    vi.advanceTimersByTime(500);
    expect(sent()).toBe(0);
    session.connecting = false;
    session.emit("connect");
    expect(sent()).toBe(1);
    session.closed = true;
    session.emit("close");
    vi.advanceTimersByTime(1000);
    expect(dead).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});
