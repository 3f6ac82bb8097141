// HTTP/2 keepalive against a dead load balancer: a TCP proxy that stops
// passing bytes without closing anything. The generated client's PINGs find
// the dead connection (the call in flight fails unavailable and the next
// reconnects) where a client without them waits forever; its idleTimeoutMs
// closes idle sessions; and a node:http2 server with http2ServerKeepalive
// drops a client that stopped answering, aborting its calls' signal.

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it, vi } from "vitest";
import { envelopeEncode } from "../runtime-inline/core/envelope.ts";
import {
  Code,
  ConnectError,
  createElizaServiceClient,
  createElizaServiceHandler,
  http2ServerKeepalive,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { IntroduceRequestSchema } from "./gen/eliza/v1/eliza_pb.ts";
import { blackholeProxy } from "./support/blackhole-proxy.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0).reverse()) close();
});

/** Resolves once `signal` aborts. */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );

/**
 * An h2c server of the generated handler: `say("hang")` answers only when
 * the call is aborted, `introduce` sends one message and then waits for
 * the same. `events` records sessions and aborts in order.
 */
async function elizaServer(keepalive: boolean) {
  const events: string[] = [];
  let calls = 0;
  const handler = createElizaServiceHandler({
    async say(request, context) {
      calls++;
      if (request.sentence === "hang") await aborted(context.signal);
      return { sentence: request.sentence };
    },
    async *introduce(_request, context) {
      yield { sentence: "hello" };
      await aborted(context.signal);
      events.push("introduce aborted");
    },
  });
  const server = http2.createServer(handler.node);
  if (keepalive) {
    http2ServerKeepalive(server, { pingIntervalMs: 50, pingTimeoutMs: 100 });
  }
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    events.push("session open");
    session.on("close", () => events.push("session close"));
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  closers.push(() => {
    server.close();
    for (const session of sessions) session.destroy();
  });
  return {
    port: (server.address() as AddressInfo).port,
    events,
    calls: () => calls,
  };
}

async function proxyTo(port: number) {
  const proxy = await blackholeProxy(port);
  closers.push(proxy.close);
  return proxy;
}

describe("client keepalive", () => {
  it("finds a dead connection: the call in flight fails unavailable naming the PING, while one without keepalive still waits; the next call reconnects", async () => {
    const server = await elizaServer(false);
    const plainProxy = await proxyTo(server.port);
    const keptProxy = await proxyTo(server.port);
    const plain = createElizaServiceClient(plainProxy.url, {
      transport: "http2",
    });
    const kept = createElizaServiceClient(keptProxy.url, {
      transport: "http2",
      http2: { pingIntervalMs: 50, pingTimeoutMs: 100 },
    });
    const cancelPlain = new AbortController();
    let plainSettled = false;
    const plainCall = plain
      .say({ sentence: "hang" }, { signal: cancelPlain.signal })
      .finally(() => (plainSettled = true));
    const keptCall = kept.say({ sentence: "hang" });
    plainCall.catch(() => {});
    keptCall.catch(() => {});
    // Both calls reached the server before their connections die.
    await vi.waitFor(() => expect(server.calls()).toBe(2));
    plainProxy.blackhole();
    keptProxy.blackhole();

    const error = await keptCall.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toMatch(/PING not acknowledged/);
    // Without keepalive nothing ever tells the client: its call still waits.
    await new Promise((resolve) => setImmediate(resolve));
    expect(plainSettled).toBe(false);
    cancelPlain.abort();
    await expect(plainCall).rejects.toMatchObject({ code: Code.Canceled });

    // The load balancer is back: the next call opens a new connection.
    keptProxy.forward();
    const response = await kept.say({ sentence: "again" });
    expect(response.sentence).toBe("again");
    expect(keptProxy.connections()).toBe(2);
  });

  it("idleTimeoutMs closes a session without calls (the server sees it go), and the next call reconnects", async () => {
    const server = await elizaServer(false);
    const client = createElizaServiceClient(`http://127.0.0.1:${server.port}`, {
      transport: "http2",
      http2: { idleTimeoutMs: 100 },
    });
    await client.say({ sentence: "one" });
    expect(server.events).toEqual(["session open"]);
    await vi.waitFor(() =>
      expect(server.events).toEqual(["session open", "session close"]),
    );
    const response = await client.say({ sentence: "two" });
    expect(response.sentence).toBe("two");
    expect(server.events).toEqual([
      "session open",
      "session close",
      "session open",
    ]);
  });
});

describe("http2ServerKeepalive", () => {
  it("destroys the session of a client that stopped answering PINGs: the streaming call in flight sees context.signal abort", async () => {
    const server = await elizaServer(true);
    const proxy = await proxyTo(server.port);
    const client = http2.connect(proxy.url);
    client.on("error", () => {});
    closers.push(() => client.destroy());
    const pings: number[] = [];
    client.on("ping", () => pings.push(pings.length));
    const stream = client.request({
      ":method": "POST",
      ":path": "/connectrpc.eliza.v1.ElizaService/Introduce",
      "content-type": "application/connect+proto",
    });
    stream.on("error", () => {});
    stream.end(
      envelopeEncode(
        0,
        toBinary(
          IntroduceRequestSchema,
          create(IntroduceRequestSchema, { name: "keepalive" }),
        ),
      ),
    );
    // The first message arrives: the call is in flight, and stays so
    // while PINGs are answered.
    await new Promise((resolve) => stream.once("data", resolve));
    await vi.waitFor(() => expect(pings.length).toBe(2));
    expect(server.events).toEqual(["session open"]);

    proxy.blackhole();
    await vi.waitFor(() =>
      expect(server.events).toContain("introduce aborted"),
    );
    await vi.waitFor(() => expect(server.events).toContain("session close"));
    // The client, whose bytes now go nowhere, was told nothing.
    expect(client.closed || client.destroyed).toBe(false);
  });
});
