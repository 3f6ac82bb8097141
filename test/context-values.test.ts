// Context values end to end: a handler's contextValues option reaches its
// interceptors and its implementation, on every kind of method and every
// protocol, an interceptor's value reaches the implementation, and a call's
// CallOptions.contextValues reach the client's interceptors, with the
// request fields connect-es's interceptors see.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createContextKey,
  createContextValues,
  createElizaServiceClient,
  createElizaServiceHandler,
  type ContextValues,
  type ElizaServiceImplementation,
  type Interceptor,
  type UnaryRequest,
  type StreamRequest,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { elizaProtocols } from "./support/protocols.ts";
import { startServer, type StartedServer } from "./support/servers.ts";

const tenantKey = createContextKey("no tenant", { description: "tenant" });
const userKey = createContextKey<string | undefined>(undefined, {
  description: "user",
});

/** What each side saw of one call. */
interface Sighting {
  readonly where: "interceptor" | "implementation";
  readonly tenant: string;
  readonly user: string | undefined;
}

const sightings: Sighting[] = [];

function saw(where: Sighting["where"], values: ContextValues): void {
  sightings.push({
    where,
    tenant: values.get(tenantKey),
    user: values.get(userKey),
  });
}

// Every method reports the values its context carries.
const implementation: ElizaServiceImplementation = {
  say(request, context) {
    saw("implementation", context.values);
    return { sentence: request.sentence };
  },
  async *introduce(request, context) {
    saw("implementation", context.values);
    yield { sentence: request.name };
  },
  async pontificate(requests, context) {
    saw("implementation", context.values);
    let sentence = "";
    for await (const r of requests) sentence += r.sentence;
    return { sentence };
  },
  async *converse(requests, context) {
    saw("implementation", context.values);
    for await (const r of requests) yield { sentence: r.sentence };
  },
};

// Reads the option's value, then authenticates: sets what the
// implementation reads.
const authenticate: Interceptor = (next) => async (request) => {
  saw("interceptor", request.contextValues);
  const token = request.header.get("authorization");
  if (token !== null) request.contextValues.set(userKey, token.slice(7));
  return await next(request);
};

const protocols = ["connect", "grpc", "grpc-web"] as const;

let server: StartedServer;
let plain: StartedServer;
const optionCalls: { method: string; url: string; tenant: string | null }[] =
  [];

beforeAll(async () => {
  server = await startServer(
    "h2c",
    createElizaServiceHandler(implementation, {
      interceptors: [authenticate],
      contextValues: (request) => {
        optionCalls.push({
          method: request.method,
          url: request.url,
          tenant: request.header.get("x-tenant"),
        });
        return createContextValues().set(
          tenantKey,
          request.header.get("x-tenant") ?? "none sent",
        );
      },
    }).node,
  );
  // Neither option nor interceptors: the implementation still has values.
  plain = await startServer(
    "h2c",
    createElizaServiceHandler(implementation).node,
  );
});

afterAll(async () => {
  await server.close();
  await plain.close();
});

function client(
  protocol: (typeof protocols)[number],
  baseUrl = server.url,
  interceptors: Interceptor[] = [],
) {
  return createElizaServiceClient(baseUrl, {
    protocol: elizaProtocols[protocol],
    transport: "http2",
    interceptors,
  });
}

const headers = { "x-tenant": "acme", authorization: "Bearer ada" };
const expected: Sighting[] = [
  { where: "interceptor", tenant: "acme", user: undefined },
  { where: "implementation", tenant: "acme", user: "ada" },
];

describe.each(protocols)("server, %s", (protocol) => {
  it("unary: the option's values reach the interceptor, and the interceptor's the implementation", async () => {
    sightings.length = 0;
    optionCalls.length = 0;
    await client(protocol).say({ sentence: "hi" }, { headers });
    expect(sightings).toEqual(expected);
    expect(optionCalls).toEqual([
      {
        method: "POST",
        url: `${server.url}/connectrpc.eliza.v1.ElizaService/Say`,
        tenant: "acme",
      },
    ]);
  });

  it("server streaming", async () => {
    sightings.length = 0;
    const out: string[] = [];
    for await (const m of client(protocol).introduce(
      { name: "x" },
      { headers },
    )) {
      out.push(m.sentence);
    }
    expect(out).toEqual(["x"]);
    expect(sightings).toEqual(expected);
  });

  it("client streaming", async () => {
    sightings.length = 0;
    const response = await client(protocol).pontificate(
      [{ sentence: "a" }, { sentence: "b" }],
      { headers },
    );
    expect(response.sentence).toBe("ab");
    expect(sightings).toEqual(expected);
  });

  it("bidi streaming", async () => {
    sightings.length = 0;
    const out: string[] = [];
    for await (const m of client(protocol).converse([{ sentence: "a" }], {
      headers,
    })) {
      out.push(m.sentence);
    }
    expect(out).toEqual(["a"]);
    expect(sightings).toEqual(expected);
  });

  it("values are the call's own: one call's set does not reach the next", async () => {
    sightings.length = 0;
    await client(protocol).say({ sentence: "1" }, { headers });
    await client(protocol).say(
      { sentence: "2" },
      { headers: { "x-tenant": "other" } },
    );
    expect(sightings).toEqual([
      ...expected,
      { where: "interceptor", tenant: "other", user: undefined },
      { where: "implementation", tenant: "other", user: undefined },
    ]);
  });

  it("without the option, an implementation gets empty values of its own", async () => {
    sightings.length = 0;
    await client(protocol, plain.url).say({ sentence: "1" }, { headers });
    await client(protocol, plain.url)
      .introduce({ name: "x" }, { headers })
      [Symbol.asyncIterator]()
      .next();
    expect(sightings).toEqual([
      { where: "implementation", tenant: "no tenant", user: undefined },
      { where: "implementation", tenant: "no tenant", user: undefined },
    ]);
  });
});

describe.each(protocols)("client, %s", (protocol) => {
  type Seen = Pick<
    UnaryRequest | StreamRequest,
    "stream" | "service" | "requestMethod" | "url"
  > & { method: string; tenant: string; user: string | undefined };

  function recording(seen: Seen[]): Interceptor[] {
    return [
      (next) => async (request) => {
        // An outer interceptor may pass a value to an inner one.
        request.contextValues.set(userKey, "set by the outer interceptor");
        return await next(request);
      },
      (next) => async (request) => {
        seen.push({
          stream: request.stream,
          service: request.service,
          method: request.method.name,
          requestMethod: request.requestMethod,
          url: request.url,
          tenant: request.contextValues.get(tenantKey),
          user: request.contextValues.get(userKey),
        });
        return await next(request);
      },
    ];
  }

  it("call options' contextValues reach the interceptors, with the request's fields", async () => {
    const seen: Seen[] = [];
    const eliza = client(protocol, plain.url, recording(seen));
    const contextValues = createContextValues().set(tenantKey, "from call");
    await eliza.say({ sentence: "x" }, { contextValues });
    await eliza
      .introduce({ name: "x" }, { contextValues })
      [Symbol.asyncIterator]()
      .next();
    const common = {
      service: "connectrpc.eliza.v1.ElizaService",
      requestMethod: "POST",
      tenant: "from call",
      user: "set by the outer interceptor",
    };
    expect(seen).toEqual([
      {
        ...common,
        stream: false,
        method: "Say",
        url: `${plain.url}/connectrpc.eliza.v1.ElizaService/Say`,
      },
      {
        ...common,
        stream: true,
        method: "Introduce",
        url: `${plain.url}/connectrpc.eliza.v1.ElizaService/Introduce`,
      },
    ]);
    // The interceptor wrote into the caller's own values.
    expect(contextValues.get(userKey)).toBe("set by the outer interceptor");
  });

  it("without contextValues, each call gets empty values of its own", async () => {
    const seen: Seen[] = [];
    const eliza = client(protocol, plain.url, [
      (next) => async (request) => {
        // Unset on entry: nothing carried over from the previous call.
        seen.push({
          stream: request.stream,
          service: request.service,
          method: request.method.name,
          requestMethod: request.requestMethod,
          url: request.url,
          tenant: request.contextValues.get(tenantKey),
          user: request.contextValues.get(userKey),
        });
        request.contextValues.set(tenantKey, "leaked?");
        return await next(request);
      },
    ]);
    await eliza.say({ sentence: "1" });
    await eliza.say({ sentence: "2" });
    expect(seen.map((s) => s.tenant)).toEqual(["no tenant", "no tenant"]);
  });

  it(
    protocol === "connect"
      ? "requestMethod is GET for a Connect GET call"
      : "requestMethod stays POST with useHttpGet, which only Connect has",
    async () => {
      const methods: string[] = [];
      const eliza = createElizaServiceClient(plain.url, {
        protocol: elizaProtocols[protocol],
        transport: "http2",
        useHttpGet: true,
        interceptors: [
          (next) => async (request) => {
            methods.push(request.requestMethod);
            return await next(request);
          },
        ],
      });
      expect((await eliza.say({ sentence: "get" })).sentence).toBe("get");
      expect(methods).toEqual([protocol === "connect" ? "GET" : "POST"]);
    },
  );
});

describe("server, Connect GET", () => {
  it("interceptors and the option see requestMethod GET and the query", async () => {
    optionCalls.length = 0;
    const methods: string[] = [];
    const eliza = createElizaServiceClient(server.url, {
      transport: "http2",
      useHttpGet: true,
      interceptors: [
        (next) => async (request) => {
          methods.push(request.requestMethod);
          return await next(request);
        },
      ],
    });
    await eliza.say({ sentence: "get" }, { headers });
    expect(methods).toEqual(["GET"]);
    expect(optionCalls).toHaveLength(1);
    expect(optionCalls[0]!.method).toBe("GET");
    expect(optionCalls[0]!.url).toMatch(
      /\/connectrpc\.eliza\.v1\.ElizaService\/Say\?/,
    );
  });
});
