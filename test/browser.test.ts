// The generated client in a real browser (headless Chromium, driven by
// playwright-core): a page whose script is the Eliza client generated with
// `platform=web` calls the generated Node server over HTTP/1.1 (node:http)
// and over HTTP/2 with TLS (node:http2, allowHTTP1), with every protocol
// and RPC kind the browser allows on each. The page comes from another
// origin, which the servers allow with their `cors` option; a page from an
// origin they do not allow cannot call. What a fetch polyfill or Node's
// fetch cannot show shows here: the browser's own rules for streaming
// uploads, cancellation, deadlines and CORS.
//
// Chromium must be installed (Debian's `chromium`, or $CHROMIUM): without
// it these tests fail, they do not skip.

import { EventEmitter } from "node:events";
import type * as http from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceHandler,
  type ElizaServiceImplementation,
  type HandlerContext,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { SayResponseSchema } from "./gen/eliza/v1/eliza_pb.ts";
import type {
  CallResult,
  CallSpec,
  PageGlobals,
  Transport,
} from "./browser/api.ts";
import {
  buildPage,
  launchChromium,
  recordExchanges,
  servePage,
  type Exchange,
} from "./browser/harness.ts";
import {
  startServer,
  type NodeListener,
  type StartedServer,
} from "./support/servers.ts";

/**
 * How long a wait for an event may take before the test fails naming it: a
 * guard against a hang, never a measure of speed, below vitest's timeout.
 */
const hangMs = 20_000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${hangMs} ms: ${what}`)),
        hangMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/** What the implementation saw of each call. */
interface SeenCall {
  readonly method: string;
  readonly protocol: HandlerContext["protocol"];
  readonly requestMethod: string;
  readonly contentType: string | null;
  readonly caller: string | null;
}

const seen: SeenCall[] = [];
/** Emits the name of a waiting call once its context.signal aborts. */
const aborts = new EventEmitter();

function see(context: HandlerContext): void {
  seen.push({
    method: context.method.name,
    protocol: context.protocol,
    requestMethod: context.requestMethod,
    contentType: context.requestHeaders.get("content-type"),
    caller: context.requestHeaders.get("x-caller"),
  });
  context.responseHeaders.set("x-eliza", "eliza");
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

const eliza: ElizaServiceImplementation = {
  async say(request, context) {
    see(context);
    if (request.sentence === "error") {
      throw new ConnectError(
        "Eliza cannot answer that",
        Code.FailedPrecondition,
        {
          details: [
            { desc: SayResponseSchema, value: { sentence: "ask me another" } },
          ],
        },
      );
    }
    if (request.sentence.startsWith("wait:")) {
      // Answers never: only the deadline ends the call.
      await aborted(context.signal);
      aborts.emit(request.sentence);
      throw context.signal.reason;
    }
    return { sentence: `You said: ${request.sentence}` };
  },
  async *introduce(request, context) {
    see(context);
    yield { sentence: `Hi ${request.name}, I'm Eliza.` };
    if (request.name.startsWith("wait:")) {
      // Sends no more: only the client's cancel ends the call.
      await aborted(context.signal);
      aborts.emit(request.name);
      return;
    }
    yield { sentence: "How are you feeling today?" };
  },
  async pontificate(requests, context) {
    see(context);
    const sentences: string[] = [];
    for await (const request of requests) sentences.push(request.sentence);
    return { sentence: sentences.join(" "), count: sentences.length };
  },
  async *converse(requests, context) {
    see(context);
    for await (const request of requests) {
      yield { sentence: `You said: ${request.sentence}` };
    }
  },
};

let nextWait = 0;
/** A fresh name for a call that waits, and the event of its abort on the server. */
function waitingCall(): { name: string; abortSeen: Promise<unknown> } {
  const name = `wait:${++nextWait}`;
  const abortSeen = within(
    new Promise((resolve) => aborts.once(name, resolve)),
    `the server's context.signal of ${name} to abort`,
  );
  // A test that fails before awaiting it must not also leave an unhandled
  // rejection behind; one that awaits it still sees the rejection.
  abortSeen.catch(() => undefined);
  return { name, abortSeen };
}

type ServerName = "http1" | "h2";

/** A server under test and what reached it. */
interface Target {
  readonly server: StartedServer;
  readonly exchanges: Exchange[];
}

/** What the servers' CORS option allows, besides the protocols' own headers. */
const cors = {
  allowedHeaders: ["X-Caller"],
  exposedHeaders: ["X-Eliza"],
  maxAgeSeconds: 60,
};

let browser: Browser | undefined;
/** Serve the page: first on the origin the servers allow, then on one they do not. */
const pageServers: StartedServer[] = [];
const targets: Partial<Record<ServerName, Target>> = {};
let page: Page | undefined;
let strangerPage: Page | undefined;

beforeAll(async () => {
  // Both take a few seconds; they do not depend on each other.
  const [built, launched] = await Promise.allSettled([
    buildPage(),
    launchChromium(),
  ]);
  // Kept first, so that afterAll closes it whatever failed.
  if (launched.status === "fulfilled") browser = launched.value;
  if (built.status === "rejected") throw built.reason;
  if (launched.status === "rejected") throw launched.reason;
  const notFound: NodeListener = (_, response) => {
    // Both response kinds have writeHead; TypeScript cannot call a union of them.
    (response as http.ServerResponse).writeHead(404).end();
  };
  for (let i = 0; i < 2; i++) {
    pageServers.push(
      await startServer("http", servePage(built.value, notFound)),
    );
  }
  const [site, stranger] = pageServers as [StartedServer, StartedServer];
  const handler = createElizaServiceHandler(eliza, {
    cors: { allowedOrigins: [site.url], ...cors },
  });
  for (const [name, kind] of [
    ["http1", "http"],
    ["h2", "h2"],
  ] as const) {
    const recorded = recordExchanges(handler.node);
    targets[name] = {
      server: await startServer(kind, recorded.listener),
      exchanges: recorded.exchanges,
    };
  }
  const context = await launched.value.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
  await page.goto(`${site.url}/`);
  strangerPage = await context.newPage();
  await strangerPage.goto(`${stranger.url}/`);
});

afterAll(async () => {
  await browser?.close();
  for (const target of Object.values(targets)) await target.server.close();
  for (const server of pageServers) await server.close();
});

function target(name: ServerName): Target {
  const found = targets[name];
  if (found === undefined) throw new Error(`no ${name} server`);
  return found;
}

/** The origin the page is served from, which the servers allow. */
function pageOrigin(): string {
  const found = pageServers[0];
  if (found === undefined) throw new Error("no page server");
  return found.url;
}

/** Makes a call from the page (by default the one on the allowed origin) with the generated web client. */
function call(
  name: ServerName,
  spec: Omit<CallSpec, "baseUrl">,
  from = page,
): Promise<CallResult> {
  if (from === undefined) throw new Error("no page");
  return within(
    from.evaluate((s) => (globalThis as unknown as PageGlobals).elizaCall(s), {
      ...spec,
      baseUrl: target(name).server.url,
    }),
    `the page's ${spec.transport} call of ${spec.method} on ${name}`,
  );
}

const postTransports: Transport[] = [
  "connect-binary",
  "connect-json",
  "grpc-web",
];

describe.each([
  {
    name: "http1",
    label: "HTTP/1.1",
    httpVersion: "1.1",
    streamsRequests: false,
  },
  {
    name: "h2",
    label: "HTTP/2 with TLS",
    httpVersion: "2.0",
    streamsRequests: true,
  },
] as const)(
  "a page calling the Node server over $label",
  ({ name, httpVersion, streamsRequests }) => {
    it("calls a unary method over Connect binary, Connect JSON, Connect GET and gRPC-Web", async () => {
      for (const transport of [...postTransports, "connect-get"] as const) {
        seen.length = 0;
        const result = await call(name, {
          transport,
          method: "say",
          sentences: [`hello over ${transport}`],
        });
        expect(result, transport).toEqual({
          messages: [`You said: hello over ${transport}`],
          elizaHeader: "eliza",
        });
        expect(seen, transport).toEqual([
          {
            method: "Say",
            protocol: transport === "grpc-web" ? "grpc-web" : "connect",
            requestMethod: transport === "connect-get" ? "GET" : "POST",
            contentType: {
              "connect-binary": "application/proto",
              "connect-json": "application/json",
              "connect-get": null,
              "grpc-web": "application/grpc-web+proto",
            }[transport],
            caller: transport === "connect-get" ? null : "page",
          },
        ]);
      }
    });

    it("gets an error with its details", async () => {
      for (const transport of [...postTransports, "connect-get"] as const) {
        const result = await call(name, {
          transport,
          method: "say",
          sentences: ["error"],
        });
        expect(result, transport).toEqual({
          messages: [],
          error: {
            code: "failed_precondition",
            message: "Eliza cannot answer that",
            detailTypes: ["connectrpc.eliza.v1.SayResponse"],
            detailSentences: ["ask me another"],
          },
        });
      }
    });

    it("fails a call past its deadline with deadline_exceeded", async () => {
      for (const transport of postTransports) {
        // Not waited for on the server: a deadline that passes before the
        // request is sent (on a loaded machine) never reaches it.
        const result = await call(name, {
          transport,
          method: "say",
          sentences: ["wait: for the deadline"],
          timeoutMs: 300,
        });
        expect(result.error?.code, transport).toBe("deadline_exceeded");
      }
    });

    // Over HTTP/1.1 too: the client sends a server-streaming call's one
    // request as a whole body, which a browser sends over any HTTP.
    it("streams responses over Connect and gRPC-Web", async () => {
      for (const transport of postTransports) {
        const result = await call(name, {
          transport,
          method: "introduce",
          sentences: ["Ada"],
        });
        expect(result, transport).toEqual({
          messages: ["Hi Ada, I'm Eliza.", "How are you feeling today?"],
          elizaHeader: "eliza",
        });
      }
    });

    it("cancels a response stream: the call fails with canceled and the server's signal aborts", async () => {
      for (const transport of postTransports) {
        const { name: who, abortSeen } = waitingCall();
        const result = await call(name, {
          transport,
          method: "introduce",
          sentences: [who],
          abortAfter: 1,
        });
        expect(result.messages, transport).toEqual([`Hi ${who}, I'm Eliza.`]);
        expect(result.error?.code, transport).toBe("canceled");
        await abortSeen;
      }
    });

    if (streamsRequests) {
      it("streams requests over Connect and gRPC-Web", async () => {
        for (const transport of postTransports) {
          const result = await call(name, {
            transport,
            method: "pontificate",
            sentences: ["I", "think", "therefore"],
          });
          expect(result, transport).toEqual({
            messages: ["I think therefore"],
            count: 3,
            elizaHeader: "eliza",
          });
        }
      });

      it("streams both ways, half duplex (all requests, then the responses), over Connect and gRPC-Web", async () => {
        for (const transport of postTransports) {
          const result = await call(name, {
            transport,
            method: "converse",
            sentences: ["hello", "goodbye"],
          });
          expect(result, transport).toEqual({
            messages: ["You said: hello", "You said: goodbye"],
            elizaHeader: "eliza",
          });
        }
      });
    } else {
      // Chromium streams a request body (fetch with a ReadableStream body
      // and duplex: "half") only over HTTP/2 and QUIC: over HTTP/1.1 fetch
      // rejects with a TypeError before sending anything.
      it("cannot stream requests: client and bidi streaming fail with unavailable, saying they need HTTP/2", async () => {
        for (const transport of postTransports) {
          for (const method of ["pontificate", "converse"] as const) {
            const result = await call(name, {
              transport,
              method,
              sentences: ["hello"],
            });
            expect(result.error, `${method} over ${transport}`).toMatchObject({
              code: "unavailable",
              message: expect.stringContaining(
                "client- and bidi-streaming calls from a browser need HTTP/2",
              ),
            });
          }
        }
      });
    }

    // Last: it looks at every request the tests above sent.
    it(`got every call over HTTP/${httpVersion === "2.0" ? "2" : "1.1"}, each POST path preflighted first (204, allowing what was asked), every response with the CORS headers`, () => {
      const origin = pageOrigin();
      const exchanges = target(name).exchanges.filter(
        (e) => e.requestHeaders.origin === origin,
      );
      const preflights = exchanges.filter((e) => e.method === "OPTIONS");
      const calls = exchanges.filter((e) => e.method !== "OPTIONS");
      expect(calls.length).toBeGreaterThan(10);
      expect(new Set(calls.map((e) => e.httpVersion))).toEqual(
        new Set([httpVersion]),
      );
      // The browser asks before the first call of each path (and caches
      // the answer for maxAgeSeconds).
      for (const call of calls.filter((e) => e.method === "POST")) {
        const first = exchanges.find((e) => e.path === call.path);
        expect(first?.method, call.path).toBe("OPTIONS");
      }
      expect(preflights.length).toBeGreaterThan(0);
      for (const preflight of preflights) {
        const asked =
          preflight.requestHeaders["access-control-request-headers"];
        expect(preflight.requestHeaders["access-control-request-method"]).toBe(
          "POST",
        );
        expect(asked).toContain("x-caller");
        expect(preflight.status).toBe(204);
        const answer = preflight.responseHeaders ?? {};
        expect(answer).toMatchObject({
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "POST, GET",
          "access-control-max-age": String(cors.maxAgeSeconds),
        });
        const allowed = (answer["access-control-allow-headers"] ?? "")
          .toLowerCase()
          .split(/\s*,\s*/);
        for (const header of String(asked).split(",")) {
          expect(allowed, preflight.path).toContain(header.trim());
        }
      }
      // A Connect GET (without headers of the caller's own) is a simple
      // request: no preflight, so a cache in between can answer it.
      expect(calls.some((e) => e.method === "GET")).toBe(true);
      // Every response, errors included: else the page sees a network error.
      const answered = calls.filter((e) => e.status !== undefined);
      expect(answered.some((e) => e.status !== 200)).toBe(true);
      for (const call of answered) {
        expect(call.responseHeaders?.["access-control-allow-origin"]).toBe(
          origin,
        );
        expect(
          call.responseHeaders?.["access-control-expose-headers"],
        ).toContain("X-Eliza");
      }
    });
  },
);

describe("a page on an origin the servers do not allow", () => {
  it.each(["http1", "h2"] as const)(
    "cannot call %s: the preflight is answered without Access-Control-Allow-Origin and the call is not sent",
    async (name) => {
      seen.length = 0;
      const result = await call(
        name,
        { transport: "connect-binary", method: "say", sentences: ["hi"] },
        strangerPage,
      );
      expect(result.error?.code).toBe("unavailable");
      const stranger = pageServers[1]?.url;
      const exchanges = target(name).exchanges.filter(
        (e) => e.requestHeaders.origin === stranger,
      );
      expect(exchanges.map((e) => [e.method, e.status])).toEqual([
        ["OPTIONS", 204],
      ]);
      expect(
        exchanges[0]?.responseHeaders?.["access-control-allow-origin"],
      ).toBeUndefined();
      expect(seen).toEqual([]);
    },
  );
});
