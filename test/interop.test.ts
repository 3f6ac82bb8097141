// Interoperability of the generated Connect code with @connectrpc/connect(-node)
// and buf curl, in both directions: connect-es clients against our generated
// servers, our generated clients against connect-es servers, errors crossing
// between the two libraries, and buf curl against our servers.

import { execFile } from "node:child_process";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code as EsCode,
  ConnectError as EsConnectError,
  createClient,
  type ConnectRouter,
  type HandlerContext as EsHandlerContext,
  type Transport,
} from "@connectrpc/connect";
import {
  compressionGzip as esCompressionGzip,
  connectNodeAdapter,
  createConnectTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import {
  createElizaServiceClient,
  createElizaServiceHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { ElizaService } from "./gen/eliza/v1/eliza_pb.ts";
import {
  createLegacyServiceClient,
  createLegacyServiceHandler,
} from "./gen/proto2/v1/legacy.LegacyService.ts";
import {
  LegacyService,
  LookupResponseSchema,
  type LookupRequest,
} from "./gen/proto2/v1/legacy_pb.ts";
import {
  Code,
  ConnectError,
  createGreetServiceClient,
  createGreetServiceHandler,
  isConnectError,
  nodeHandler,
} from "./gen/unary/v1/unary.GreetService.ts";
import {
  AddressSchema,
  EchoResponseSchema,
  GreetRequestSchema,
  GreetResponseSchema,
  GreetService,
  Mood,
  type EchoRequest,
  type GreetRequest,
} from "./gen/unary/v1/unary_pb.ts";
import { codecOption } from "./support/protocols.ts";

const fixturesDir = join(
  dirname(fileURLToPath(import.meta.url)),
  "../fixtures",
);
const bufBin = join(
  dirname(fileURLToPath(import.meta.url)),
  "../node_modules/.bin/buf",
);

// ---------------------------------------------------------------------------
// Shared service logic: both our servers and the connect-es servers answer the
// same way, so every client/server pairing must produce equal messages.

const greetRequest = {
  name: "Ada ✓",
  age: 1234567890123n,
  avatar: new Uint8Array([0, 1, 2, 254, 255]),
  nicknames: ["a", "b", ""],
  labels: { team: "core", "with space": "yes ü" },
  address: { street: "1 Main St", city: "Zürich", zip: 8000 },
  mood: Mood.GRUMPY,
  contact: { case: "phone" as const, value: 18446744073709551615n },
  vip: false,
  score: -0.5,
  previousAddresses: [{ city: "Bern" }, { street: "x", zip: 1 }],
  addressesById: { 7: { city: "Basel" }, [-3]: { zip: 42 } },
  balance: -9007199254740993n,
  id: 18446744073709551614n,
} satisfies MessageInitShape<typeof GreetRequestSchema>;

function greetLogic(
  request: GreetRequest,
): MessageInitShape<typeof GreetResponseSchema> {
  return {
    greeting: `Hello, ${request.name}!`,
    request,
    greetedAtUnixMillis: 1_700_000_000_000n,
    moods: [Mood.HAPPY, Mood.GRUMPY],
  };
}

const expectedGreet = create(
  GreetResponseSchema,
  greetLogic(create(GreetRequestSchema, greetRequest)),
);

function echoLogic(
  request: EchoRequest,
): MessageInitShape<typeof EchoResponseSchema> {
  return {
    payload: request.payload,
    data: request.data,
    numbers: request.numbers,
    blobs: request.blobs,
  };
}

// Large and repetitive, so it is compressed on the way in and on the way out.
const bigData = new TextEncoder().encode("compress me please! ".repeat(400));
const echoRequest = {
  payload: greetRequest,
  data: bigData,
  numbers: [0n, -1n, 9223372036854775807n, -9223372036854775808n],
  blobs: { empty: new Uint8Array(0), some: new Uint8Array([9, 8, 7]) },
};

function lookupLogic(
  request: LookupRequest,
): MessageInitShape<typeof LookupResponseSchema> {
  return request.key === "missing"
    ? { found: false }
    : {
        found: true,
        record: {
          key: request.key,
          value: `value of ${request.key}`,
          tags: ["t1", "t2"],
        },
      };
}

const errorDetail = { street: "detail street", city: "detail city", zip: 99 };

// ---------------------------------------------------------------------------
// Servers.

interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  httpVersion: string;
}

type Listener = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** Wraps a request listener so that every request's method, URL and headers are recorded. */
function recording(log: Recorded[], listener: Listener): Listener {
  return (req, res) => {
    log.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      httpVersion: req.httpVersion,
    });
    listener(req, res);
  };
}

interface Running {
  url: string;
  close(): Promise<void>;
}

async function listenHttp1(listener: Listener): Promise<Running> {
  const server = http.createServer(listener as http.RequestListener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function listenHttp2(listener: Listener): Promise<Running> {
  const server = http2.createServer(
    listener as (
      req: http2.Http2ServerRequest,
      res: http2.Http2ServerResponse,
    ) => void,
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}

/**
 * The x-sleep-ms of a call that must fail at its deadline: an hour, so the
 * handler cannot answer first however slow the machine, and the failure can
 * only come from the deadline.
 */
const stall = String(60 * 60_000);

/** Runs `body` with Date frozen: the time a handler sees left is the whole timeout. */
async function withFrozenDate<T>(body: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"] });
  try {
    return await body();
  } finally {
    vi.useRealTimers();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

// Our generated servers.
const oursLog: Recorded[] = [];
const greetHandler = createGreetServiceHandler({
  async greet(request, context) {
    context.responseHeaders.set(
      "x-timeout-ms",
      String(context.timeoutMs() ?? "none"),
    );
    const sleepMs = context.requestHeaders.get("x-sleep-ms");
    if (sleepMs !== null) {
      await sleep(Number(sleepMs), context.signal);
    }
    return greetLogic(request);
  },
  echo: (request) => echoLogic(request),
  fail(request, context) {
    context.responseTrailers.set("x-error-trailer", "trailer value");
    if (context.requestHeaders.get("x-throw") === "connect-es") {
      // An error of the other library, thrown inside our server.
      throw new EsConnectError(
        request.message,
        request.code as EsCode,
        { "x-error-meta": "from connect-es" },
        [{ desc: AddressSchema, value: errorDetail }],
      );
    }
    throw new ConnectError(request.message, request.code as Code, {
      metadata: { "x-error-meta": "meta value" },
      details: [{ desc: AddressSchema, value: errorDetail }],
    });
  },
});
const elizaHandler = createElizaServiceHandler({
  say: (request) => ({ sentence: `You said: ${request.sentence}` }),
});
const legacyHandler = createLegacyServiceHandler({
  store: (request) => ({
    stored: true,
    version: (request.record?.version ?? 1) + 1,
  }),
  lookup: (request) => lookupLogic(request),
});
const oursListener = recording(
  oursLog,
  nodeHandler(greetHandler, elizaHandler, legacyHandler),
);

// connect-es servers with the same behaviour.
const esLog: Recorded[] = [];
function esRoutes(router: ConnectRouter): void {
  router.service(GreetService, {
    async greet(request, context: EsHandlerContext) {
      context.responseHeader.set(
        "x-timeout-ms",
        String(context.timeoutMs() ?? "none"),
      );
      const sleepMs = context.requestHeader.get("x-sleep-ms");
      if (sleepMs !== null) {
        await sleep(Number(sleepMs), context.signal);
      }
      return greetLogic(request);
    },
    echo: (request) => echoLogic(request),
    fail(request) {
      throw new EsConnectError(
        request.message,
        request.code as EsCode,
        { "x-error-meta": "meta value" },
        [{ desc: AddressSchema, value: errorDetail }],
      );
    },
  });
  router.service(ElizaService, {
    say: (request) => ({ sentence: `You said: ${request.sentence}` }),
  });
  router.service(LegacyService, {
    store: (request) => ({
      stored: true,
      version: (request.record?.version ?? 1) + 1,
    }),
    lookup: (request) => lookupLogic(request),
  });
}
const esListener = recording(
  esLog,
  connectNodeAdapter({ routes: esRoutes }) as Listener,
);

let ours1: Running;
let ours2: Running;
let es1: Running;
let es2: Running;
const sessionManagers: Http2SessionManager[] = [];

beforeAll(async () => {
  [ours1, ours2, es1, es2] = await Promise.all([
    listenHttp1(oursListener),
    listenHttp2(oursListener),
    listenHttp1(esListener),
    listenHttp2(esListener),
  ]);
});

afterAll(async () => {
  for (const manager of sessionManagers) manager.abort();
  await Promise.all([ours1, ours2, es1, es2].map((s) => s?.close()));
});

beforeEach(() => {
  oursLog.length = 0;
  esLog.length = 0;
});

interface EsTransportOptions {
  httpVersion: "1.1" | "2";
  binary: boolean;
  gzip?: boolean;
  useHttpGet?: boolean;
}

function esTransport(baseUrl: string, options: EsTransportOptions): Transport {
  const common = {
    baseUrl,
    useBinaryFormat: options.binary,
    useHttpGet: options.useHttpGet ?? false,
    ...(options.gzip === true
      ? { sendCompression: esCompressionGzip, compressMinBytes: 1 }
      : {}),
  };
  if (options.httpVersion === "1.1") {
    return createConnectTransport({ ...common, httpVersion: "1.1" });
  }
  const sessionManager = new Http2SessionManager(baseUrl);
  sessionManagers.push(sessionManager);
  return createConnectTransport({
    ...common,
    httpVersion: "2",
    sessionManager,
  });
}

function oursUrl(httpVersion: "1.1" | "2"): string {
  return httpVersion === "1.1" ? ours1.url : ours2.url;
}

function esUrl(httpVersion: "1.1" | "2"): string {
  return httpVersion === "1.1" ? es1.url : es2.url;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

const matrix: EsTransportOptions[] = [];
for (const httpVersion of ["1.1", "2"] as const) {
  for (const binary of [true, false]) {
    for (const gzip of [false, true]) {
      matrix.push({ httpVersion, binary, gzip });
    }
  }
}

function label(o: EsTransportOptions): string {
  return `HTTP/${o.httpVersion} ${o.binary ? "binary" : "JSON"}${o.gzip === true ? " gzip" : ""}`;
}

// ---------------------------------------------------------------------------

describe("connect-es client → our generated server", () => {
  describe.each(matrix.map((o) => [label(o), o] as const))(
    "%s",
    (_, options) => {
      const transport = () =>
        esTransport(oursUrl(options.httpVersion), options);

      it("gets equal responses", async () => {
        const client = createClient(GreetService, transport());
        const greet = await client.greet(greetRequest);
        expect(equals(GreetResponseSchema, greet, expectedGreet)).toBe(true);
        const echo = await client.echo(echoRequest);
        expect(
          equals(
            EchoResponseSchema,
            echo,
            create(EchoResponseSchema, echoRequest),
          ),
        ).toBe(true);

        expect(oursLog.map((r) => r.method)).toEqual(["POST", "POST"]);
        expect(oursLog[0]!.httpVersion).toBe(
          options.httpVersion === "1.1" ? "1.1" : "2.0",
        );
        expect(oursLog[0]!.headers["content-type"]).toBe(
          options.binary ? "application/proto" : "application/json",
        );
        expect(oursLog[1]!.headers["content-encoding"]).toBe(
          options.gzip === true ? "gzip" : undefined,
        );
      });

      it("reads our server's error: code, message, details, metadata", async () => {
        const client = createClient(GreetService, transport());
        const err = await rejection(
          client.fail({
            code: Code.NotFound,
            message: "no such greeting: ✓ ü",
          }),
        );
        expect(err).toBeInstanceOf(EsConnectError);
        const e = err as EsConnectError;
        expect(e.code).toBe(EsCode.NotFound);
        expect(e.rawMessage).toBe("no such greeting: ✓ ü");
        const details = e.findDetails(AddressSchema);
        expect(details).toHaveLength(1);
        expect(
          equals(
            AddressSchema,
            details[0]!,
            create(AddressSchema, errorDetail),
          ),
        ).toBe(true);
        expect(e.metadata.get("x-error-meta")).toBe("meta value");
        expect(e.metadata.get("x-error-trailer")).toBe("trailer value");
      });

      it("keeps the code of a connect-es ConnectError thrown inside our implementation", async () => {
        const client = createClient(GreetService, transport());
        const err = await rejection(
          client.fail(
            { code: Code.PermissionDenied, message: "denied" },
            { headers: { "x-throw": "connect-es" } },
          ),
        );
        const e = EsConnectError.from(err);
        expect(e.code).toBe(EsCode.PermissionDenied);
        expect(e.rawMessage).toBe("denied");
        expect(e.findDetails(AddressSchema)).toHaveLength(1);
        expect(e.metadata.get("x-error-meta")).toBe("from connect-es");
      });

      it("passes the client's timeout to our implementation", async () => {
        const client = createClient(GreetService, transport());
        let header: Headers | undefined;
        await withFrozenDate(() =>
          client.greet(greetRequest, {
            timeoutMs: 60_000,
            onHeader: (h) => (header = h),
          }),
        );
        expect(Number(header?.get("x-timeout-ms"))).toBe(60_000);
      });

      it("fails with deadline_exceeded when our implementation is too slow", async () => {
        const client = createClient(GreetService, transport());
        const err = await rejection(
          client.greet(
            { name: "slow" },
            { timeoutMs: 200, headers: { "x-sleep-ms": stall } },
          ),
        );
        expect(EsConnectError.from(err).code).toBe(EsCode.DeadlineExceeded);
        expect((await client.greet({ name: "fast" })).greeting).toBe(
          "Hello, fast!",
        );
      });

      it("calls NO_SIDE_EFFECTS methods with GET", async () => {
        const getTransport = esTransport(oursUrl(options.httpVersion), {
          ...options,
          useHttpGet: true,
        });
        const eliza = createClient(ElizaService, getTransport);
        const say = await eliza.say({ sentence: "hello & goodbye + 100% ✓" });
        expect(say.sentence).toBe("You said: hello & goodbye + 100% ✓");
        const legacy = createClient(LegacyService, getTransport);
        const lookup = await legacy.lookup({ key: "k/1?x=y" });
        expect(
          equals(
            LookupResponseSchema,
            lookup,
            create(
              LookupResponseSchema,
              lookupLogic({ key: "k/1?x=y" } as LookupRequest),
            ),
          ),
        ).toBe(true);
        // Store has side effects: still a POST.
        const store = await legacy.store({ record: { key: "k", version: 4 } });
        expect(store.stored).toBe(true);
        expect(store.version).toBe(5);
        // GreetService has no NO_SIDE_EFFECTS method: POST.
        await createClient(GreetService, getTransport).greet({ name: "x" });

        expect(oursLog.map((r) => r.method)).toEqual([
          "GET",
          "GET",
          "POST",
          "POST",
        ]);
        expect(oursLog[0]!.url).toContain(
          "encoding=" + (options.binary ? "proto" : "json"),
        );
        if (options.gzip === true) {
          expect(oursLog[0]!.url).toContain("compression=gzip");
        }
      });
    },
  );

  it("reads a method our server does not serve (streaming, not generated) as unimplemented", async () => {
    const err = await rejection(
      createClient(
        ElizaService,
        esTransport(ours1.url, { httpVersion: "1.1", binary: true }),
      )
        .introduce({ name: "x" })
        [Symbol.asyncIterator]()
        .next(),
    );
    expect(EsConnectError.from(err).code).toBe(EsCode.Unimplemented);
  });
});

describe("our generated client → connect-es server", () => {
  const ourMatrix: {
    transport: "fetch" | "http2";
    binary: boolean;
    gzip: boolean;
  }[] = [];
  for (const transport of ["fetch", "http2"] as const) {
    for (const binary of [true, false]) {
      for (const gzip of [false, true]) {
        ourMatrix.push({ transport, binary, gzip });
      }
    }
  }

  describe.each(
    ourMatrix.map(
      (o) =>
        [
          `${o.transport} ${o.binary ? "binary" : "JSON"}${o.gzip ? " gzip" : ""}`,
          o,
        ] as const,
    ),
  )("%s", (_, o) => {
    const url = () => esUrl(o.transport === "fetch" ? "1.1" : "2");
    const options = () => ({
      transport: o.transport,
      ...codecOption(o.binary),
      ...(o.gzip ? { sendCompression: "gzip", compressMinBytes: 1 } : {}),
    });

    it("gets equal responses", async () => {
      const client = createGreetServiceClient(url(), options());
      const greet = await client.greet(greetRequest);
      expect(equals(GreetResponseSchema, greet, expectedGreet)).toBe(true);
      const echo = await client.echo(echoRequest);
      expect(
        equals(
          EchoResponseSchema,
          echo,
          create(EchoResponseSchema, echoRequest),
        ),
      ).toBe(true);

      expect(esLog.map((r) => r.method)).toEqual(["POST", "POST"]);
      expect(esLog[0]!.httpVersion).toBe(
        o.transport === "fetch" ? "1.1" : "2.0",
      );
      expect(esLog[0]!.headers["content-type"]).toBe(
        o.binary ? "application/proto" : "application/json",
      );
      expect(esLog[0]!.headers["connect-protocol-version"]).toBe("1");
      expect(esLog[1]!.headers["content-encoding"]).toBe(
        o.gzip ? "gzip" : undefined,
      );
    });

    it("gets the same responses as from our own server", async () => {
      const theirs = await createGreetServiceClient(url(), options()).echo(
        echoRequest,
      );
      const ours = await createGreetServiceClient(
        oursUrl(o.transport === "fetch" ? "1.1" : "2"),
        options(),
      ).echo(echoRequest);
      expect(equals(EchoResponseSchema, theirs, ours)).toBe(true);
    });

    it("reads the connect-es server's error: code, message, details, metadata", async () => {
      const client = createGreetServiceClient(url(), options());
      const err = await rejection(
        client.fail({ code: Code.FailedPrecondition, message: "not now ✓" }),
      );
      expect(err).toBeInstanceOf(ConnectError);
      expect(isConnectError(err)).toBe(true);
      const e = err as ConnectError;
      expect(e.code).toBe(Code.FailedPrecondition);
      expect(e.rawMessage).toBe("not now ✓");
      expect(e.message).toBe("[failed_precondition] not now ✓");
      const details = e.findDetails(AddressSchema);
      expect(details).toHaveLength(1);
      expect(
        equals(AddressSchema, details[0]!, create(AddressSchema, errorDetail)),
      ).toBe(true);
      expect(e.metadata.get("x-error-meta")).toBe("meta value");
    });

    it("calls NO_SIDE_EFFECTS methods with GET", async () => {
      const getOptions = { ...options(), useHttpGet: true };
      const eliza = createElizaServiceClient(url(), getOptions);
      expect(
        (await eliza.say({ sentence: "hello & goodbye + 100% ✓" })).sentence,
      ).toBe("You said: hello & goodbye + 100% ✓");
      const legacy = createLegacyServiceClient(url(), getOptions);
      const lookup = await legacy.lookup({ key: "k/1?x=y" });
      expect(
        equals(
          LookupResponseSchema,
          lookup,
          create(
            LookupResponseSchema,
            lookupLogic({ key: "k/1?x=y" } as LookupRequest),
          ),
        ),
      ).toBe(true);
      expect(
        (await legacy.store({ record: { key: "k", version: 1 } })).version,
      ).toBe(2);
      expect(esLog.map((r) => r.method)).toEqual(["GET", "GET", "POST"]);
      if (o.gzip) {
        expect(esLog[0]!.url).toContain("compression=gzip");
      }
    });

    it("sends its timeout to the connect-es handler", async () => {
      const client = createGreetServiceClient(url(), options());
      const result = await withFrozenDate(() =>
        client.greet.raw({ name: "t" }, { timeoutMs: 60_000 }),
      );
      expect(Number(result.header.get("x-timeout-ms"))).toBe(60_000);
      const none = await client.greet.raw({ name: "t" });
      expect(none.header.get("x-timeout-ms")).toBe("none");
    });

    it("fails with deadline_exceeded when the connect-es handler is too slow", async () => {
      const client = createGreetServiceClient(url(), options());
      const err = await rejection(
        client.greet(
          { name: "slow" },
          { timeoutMs: 200, headers: { "x-sleep-ms": stall } },
        ),
      );
      expect(ConnectError.from(err).code).toBe(Code.DeadlineExceeded);
      // The client still works afterwards.
      expect((await client.greet({ name: "fast" })).greeting).toBe(
        "Hello, fast!",
      );
    });
  });
});

describe("ConnectError across the two libraries", () => {
  it("recognises an error of @connectrpc/connect with instanceof and isConnectError", () => {
    const es = new EsConnectError("boom", EsCode.Aborted, { a: "b" });
    expect(es instanceof ConnectError).toBe(true);
    expect(isConnectError(es)).toBe(true);
    const from = ConnectError.from(es);
    expect(from).toBe(es);
    expect(from.code).toBe(Code.Aborted);
    expect(new Error("x") instanceof ConnectError).toBe(false);
  });

  it("our ConnectError is recognised by @connectrpc/connect", () => {
    const ours = new ConnectError("boom", Code.DataLoss, {
      metadata: { a: "b" },
    });
    const es = EsConnectError.from(ours);
    expect(es.code).toBe(EsCode.DataLoss);
    expect(es.rawMessage).toBe("boom");
  });

  it("a connect-es error thrown in our server reaches our client with its code and details", async () => {
    for (const [url, transport] of [
      [ours1.url, "fetch"],
      [ours2.url, "http2"],
    ] as const) {
      const client = createGreetServiceClient(url, { transport });
      const err = await rejection(
        client.fail(
          { code: Code.ResourceExhausted, message: "quota" },
          { headers: { "x-throw": "connect-es" } },
        ),
      );
      expect(err).toBeInstanceOf(ConnectError);
      const e = err as ConnectError;
      expect(e.code).toBe(Code.ResourceExhausted);
      expect(e.rawMessage).toBe("quota");
      expect(e.findDetails(AddressSchema)).toHaveLength(1);
      expect(e.metadata.get("x-error-meta")).toBe("from connect-es");
    }
  });
});

// ---------------------------------------------------------------------------

function bufCurl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the servers run in this process and must keep answering.
    execFile(
      bufBin,
      ["curl", "--schema", fixturesDir, "--protocol", "connect", ...args],
      (error, stdout, stderr) => {
        const code =
          error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("buf curl → our generated server", () => {
  for (const httpVersion of ["1.1", "2"] as const) {
    const flags = () =>
      httpVersion === "2" ? ["--http2-prior-knowledge"] : [];

    it(`HTTP/${httpVersion}: prints the JSON response of a successful call`, async () => {
      const result = await bufCurl([
        ...flags(),
        "--data",
        JSON.stringify({
          name: "Bob",
          age: "42",
          nicknames: ["b"],
          mood: "MOOD_HAPPY",
        }),
        `${oursUrl(httpVersion)}/fixtures.unary.v1.GreetService/Greet`,
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const json = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(json["greeting"]).toBe("Hello, Bob!");
      expect(json["request"]).toEqual({
        name: "Bob",
        age: "42",
        nicknames: ["b"],
        mood: "MOOD_HAPPY",
      });
      expect(json["greetedAtUnixMillis"]).toBe("1700000000000");
      expect(json["moods"]).toEqual(["MOOD_HAPPY", "MOOD_GRUMPY"]);
      expect(oursLog.at(-1)!.httpVersion).toBe(
        httpVersion === "1.1" ? "1.1" : "2.0",
      );
    });

    it(`HTTP/${httpVersion}: a GET-able method works too`, async () => {
      const result = await bufCurl([
        ...flags(),
        "--data",
        JSON.stringify({ sentence: "hi" }),
        `${oursUrl(httpVersion)}/connectrpc.eliza.v1.ElizaService/Say`,
      ]);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ sentence: "You said: hi" });
    });

    it(`HTTP/${httpVersion}: an error exits non-zero and prints the code`, async () => {
      const result = await bufCurl([
        ...flags(),
        "--data",
        JSON.stringify({ code: Code.NotFound, message: "nothing here" }),
        `${oursUrl(httpVersion)}/fixtures.unary.v1.GreetService/Fail`,
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).toContain("not_found");
      expect(result.stdout + result.stderr).toContain("nothing here");
    });
  }
});
