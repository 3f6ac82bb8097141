// The fuzzer: sends mutated requests (test/fuzz/cases.ts) to a generated
// Eliza server, through handler.node on node:http and node:http2 (h2c),
// handler.http2Stream on h2c, and handler.fetch in process, and checks what
// comes back.
//
// Oracles, for every case:
//   - crash: no uncaught exception or unhandled rejection in the process, no
//     rejection from handler.fetch, no error other than a ConnectError
//     reaching onError (the implementations throw nothing, so anything else
//     is the runtime failing);
//   - hang: a response (or, where the case allows it, a reset) within hangMs;
//   - malformed: a Connect error has a valid code, the HTTP status of that
//     code, and a JSON body; a successful Connect response decodes; a
//     Connect stream is envelopes ending in one end-of-stream message; every
//     gRPC and gRPC-Web response has a valid grpc-status (in trailers,
//     trailers-only headers, or gRPC-Web's final envelope); no message
//     holds a stack trace or a file path;
//   - wrong code: the outcome is one the case's input class allows (see
//     cases.ts);
// and after every batch, the generated client still makes a valid call of
// each kind, over each transport and protocol.

import * as http from "node:http";
import * as http2 from "node:http2";
import * as zlib from "node:zlib";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import {
  ConnectError,
  connectProtocol,
  createElizaServiceClient,
  createElizaServiceHandler,
  createFetchHttpClient,
  grpcProtocol,
  grpcWebProtocol,
  type HandlerContext,
  type NodeServiceHandler,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { specCodeNames } from "../support/code-names.ts";
import {
  startServer,
  startStreamServer,
  type StartedServer,
} from "../support/servers.ts";
import {
  allowedOutcomes,
  buildCase,
  describeCase,
  fuzzReadMaxBytes,
  type FuzzCase,
  type MethodDef,
} from "./cases.ts";

export interface FuzzOptions {
  readonly seed: number;
  /** Run this many cases... */
  readonly cases?: number;
  /** ...or until this many milliseconds have passed. */
  readonly durationMs?: number;
  /** Only this case (replay). */
  readonly only?: number;
  /**
   * Cases in flight at once (default 4): the server sees them interleaved,
   * and compressed ones queue at its decompression gate, which the fuzz
   * server keeps to two at a time. Each case is still built from the seed
   * and its index alone, so the cases of a run never change.
   */
  readonly concurrency?: number;
  /** Valid calls are checked after every this many cases. */
  readonly batch?: number;
  /** A request without a response after this long is a hang. */
  readonly hangMs?: number;
  /** Stop after this many failures. */
  readonly maxFailures?: number;
  /** Called before each case is sent. */
  readonly onCase?: (index: number) => void;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export interface FuzzFailure {
  readonly kind: "crash" | "hang" | "wrong code" | "malformed" | "not serving";
  readonly detail: string;
  /** The case, as text, with the command that replays it. */
  readonly case?: string;
}

export interface FuzzReport {
  readonly seed: number;
  cases: number;
  crashes: number;
  hangs: number;
  wrongCodes: number;
  malformed: number;
  notServing: number;
  /** Requests the client library refused to send (invalid header values). */
  unsent: number;
  /** Outcomes seen, by name. */
  readonly outcomes: Record<string, number>;
  readonly failures: FuzzFailure[];
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
}

type SendResult =
  | { kind: "response"; response: RawResponse }
  | { kind: "reset"; detail: string }
  | { kind: "aborted" }
  | { kind: "hang" }
  | { kind: "unsent"; detail: string }
  | { kind: "threw"; error: unknown };

// ---------------------------------------------------------------------------
// The server under test.

interface Servers {
  readonly handler: NodeServiceHandler;
  readonly http1: StartedServer;
  readonly h2c: StartedServer;
  readonly h2cStream: StartedServer;
  /** Errors other than ConnectErrors that reached onError. */
  readonly thrown: unknown[];
  close(): Promise<void>;
}

/** Reads every request header, the URL and the deadline, as an implementation may. */
function touch(context: HandlerContext): void {
  context.requestHeaders.forEach((value, key) => `${key}: ${value}`);
  void context.url.length;
  context.timeoutMs();
}

async function startServers(): Promise<Servers> {
  const thrown: unknown[] = [];
  const handler = createElizaServiceHandler(
    {
      say: (request, context) => {
        // What an implementation may read of its request: all of it.
        touch(context);
        return { sentence: `You said: ${request.sentence}` };
      },
      async *introduce(request, context) {
        touch(context);
        for (let i = 0; i < 3; i++)
          yield { sentence: `Hi ${request.name}, ${i}` };
      },
      async pontificate(requests, context) {
        touch(context);
        let count = 0;
        for await (const _ of requests) count++;
        return { sentence: `${count} sentences`, count };
      },
      async *converse(requests, context) {
        touch(context);
        for await (const r of requests)
          yield { sentence: `You said: ${r.sentence}` };
      },
    },
    {
      readMaxBytes: fuzzReadMaxBytes,
      // Responses get compressed too, so that the oracles read those.
      compressMinBytes: 16,
      // Two decompressions at a time, the others queued: with at most
      // four requests in flight the queue never overflows, so no call gets
      // resource_exhausted from it, but the queue is used.
      decompressionBudget: 2 * fuzzReadMaxBytes,
      decompressionQueue: 64,
      onError(error) {
        if (!(error instanceof ConnectError)) thrown.push(error);
      },
    },
  );
  const [http1, h2c, h2cStream] = await Promise.all([
    startServer("http", handler.node),
    startServer("h2c", handler.node),
    startStreamServer(handler.http2Stream),
  ]);
  return {
    handler,
    http1,
    h2c,
    h2cStream,
    thrown,
    close: async () => {
      await Promise.all([http1.close(), h2c.close(), h2cStream.close()]);
    },
  };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Senders: each returns the whole response, a reset, or a hang.

function headerRecord(
  headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k.startsWith(":")) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : String(v);
  }
  return out;
}

function sendHttp1(
  url: string,
  c: FuzzCase,
  hangMs: number,
): Promise<SendResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    let req: http.ClientRequest;
    try {
      req = http.request(url + c.url, {
        method: c.httpMethod,
        headers: Object.fromEntries(c.headers),
        agent: false,
      });
    } catch (e) {
      resolve({ kind: "unsent", detail: String(e) });
      return;
    }
    const timer = setTimeout(() => {
      req.destroy();
      done({ kind: "hang" });
    }, hangMs);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        done({
          kind: "response",
          response: {
            status: res.statusCode ?? 0,
            headers: headerRecord(res.headers),
            trailers: headerRecord(res.trailers),
            body: Buffer.concat(chunks),
          },
        }),
      );
      res.on("error", (e) =>
        done({ kind: "reset", detail: `response: ${e.message}` }),
      );
    });
    req.on("error", (e) => done({ kind: "reset", detail: e.message }));
    if (c.abort) {
      req.write(c.chunks[0]!);
      req.flushHeaders();
      setTimeout(() => {
        req.destroy();
        done({ kind: "aborted" });
      }, 1);
      return;
    }
    void (async () => {
      for (const chunk of c.chunks) {
        if (c.delayMs > 0) await delay(c.delayMs);
        if (settled) return;
        req.write(chunk);
      }
      req.end();
    })();
  });
}

class H2Client {
  private session: http2.ClientHttp2Session | undefined;
  private readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  private get(): http2.ClientHttp2Session {
    if (
      this.session === undefined ||
      this.session.closed ||
      this.session.destroyed
    ) {
      this.session = http2.connect(this.url);
      this.session.on("error", () => {});
    }
    return this.session;
  }

  close(): void {
    this.session?.destroy();
  }

  send(c: FuzzCase, hangMs: number): Promise<SendResult> {
    // A body longer or shorter than its content-length makes Node's HTTP/2
    // server (nghttp2) end the whole connection with GOAWAY INTERNAL_ERROR,
    // and so every other stream on it: such a case gets a connection of its own.
    const contentLength = c.headers.find(([k]) => k === "content-length");
    const isolated =
      contentLength !== undefined &&
      Number(contentLength[1]) !== c.chunks.reduce((n, b) => n + b.length, 0);
    let session: http2.ClientHttp2Session;
    if (isolated) {
      session = http2.connect(this.url);
      session.on("error", () => {});
    } else {
      session = this.get();
    }
    return this.sendOn(session, c, hangMs).finally(() => {
      if (isolated) session.destroy();
    });
  }

  private sendOn(
    session: http2.ClientHttp2Session,
    c: FuzzCase,
    hangMs: number,
  ): Promise<SendResult> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(
          {
            ":method": c.httpMethod,
            ":path": c.url,
            ...Object.fromEntries(c.headers),
          },
          { endStream: c.chunks.length === 0 },
        );
      } catch (e) {
        resolve({ kind: "unsent", detail: String(e) });
        return;
      }
      let settled = false;
      const done = (r: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        done({ kind: "hang" });
      }, hangMs);
      let response: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders = {};
      let ended = false;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (response = h));
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => (ended = true));
      stream.on("error", () => {});
      stream.on("close", () => {
        // A stream the server closed with NO_ERROR after a complete
        // response (a client still uploading) is a complete response.
        if (response === undefined || !ended) {
          done({
            kind: "reset",
            detail: `stream closed with code ${stream.rstCode} ${response === undefined ? "before a response" : "before the response ended"}`,
          });
          return;
        }
        done({
          kind: "response",
          response: {
            status: Number(response[":status"]),
            headers: headerRecord(response),
            trailers: headerRecord(trailers),
            body: Buffer.concat(chunks),
          },
        });
      });
      if (c.abort) {
        stream.write(c.chunks[0]!);
        setTimeout(() => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          done({ kind: "aborted" });
        }, 1);
        return;
      }
      if (c.chunks.length > 0) {
        void (async () => {
          for (const chunk of c.chunks) {
            if (c.delayMs > 0) await delay(c.delayMs);
            if (settled || stream.destroyed) return;
            stream.write(chunk);
          }
          stream.end();
        })();
      }
    });
  }
}

async function sendFetch(
  handler: NodeServiceHandler,
  c: FuzzCase,
  hangMs: number,
): Promise<SendResult> {
  let request: Request;
  try {
    const chunks = [...c.chunks];
    const body =
      chunks.length === 0
        ? null
        : new ReadableStream<Uint8Array>({
            async pull(controller) {
              if (c.delayMs > 0) await delay(c.delayMs);
              const chunk = chunks.shift();
              if (chunk === undefined) controller.close();
              else controller.enqueue(chunk.slice());
              if (c.abort && chunks.length < c.chunks.length) {
                // The client went away: its message must not reach anyone.
                chunks.length = 0;
                controller.error(
                  new Error(
                    "connection reset by peer (/srv/app/upload.ts:12:3)",
                  ),
                );
              }
            },
          });
    request = new Request(`http://localhost${c.url}`, {
      method: c.httpMethod,
      headers: c.headers.map(([k, v]) => [k, v]),
      body,
      ...(body === null ? {} : { duplex: "half" }),
    } as RequestInit);
  } catch (e) {
    return { kind: "unsent", detail: String(e) };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<"hang">((resolve) => {
    timer = setTimeout(() => resolve("hang"), hangMs);
  });
  try {
    const response = await Promise.race([handler.fetch(request), hang]);
    if (response === "hang") return { kind: "hang" };
    const body = await Promise.race([response.arrayBuffer(), hang]);
    if (body === "hang") {
      void response.body?.cancel().catch(() => {});
      return { kind: "hang" };
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((v, k) => (headers[k] = v));
    return {
      kind: "response",
      response: {
        status: response.status,
        headers,
        trailers: {},
        body: Buffer.from(body),
      },
    };
  } catch (error) {
    return { kind: "threw", error };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Oracles: the outcome a response stands for, or what is wrong with it.

/** Connect's HTTP status of each code (the protocol specification's table). */
const specHttpStatus: Record<string, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

class Malformed extends Error {}

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Malformed(what);
}

// What no message sent to a client may contain: stack frames and paths.
const leakPattern =
  /\n\s+at |\bat [\w.<>]+ \(|node:internal|file:\/\/|\/work\/|\/home\/|\/usr\/|[\w-]+\.[cm]?[jt]s:\d+/;

function checkMessage(message: unknown): void {
  if (message === undefined) return;
  check(
    typeof message === "string",
    `message is not a string: ${JSON.stringify(message)}`,
  );
  check(
    !leakPattern.test(message),
    `message leaks a stack trace or path: ${JSON.stringify(message)}`,
  );
}

function decompress(name: string | undefined, data: Buffer): Buffer {
  switch (name) {
    case undefined:
    case "identity":
      return data;
    case "gzip":
      return zlib.gunzipSync(data);
    case "br":
      return zlib.brotliDecompressSync(data);
    case "zstd":
      return zlib.zstdDecompressSync(data);
    case "deflate":
      return zlib.inflateSync(data);
    default:
      throw new Malformed(`unknown response compression ${name}`);
  }
}

function decodeOutput(
  method: MethodDef,
  binary: boolean,
  data: Uint8Array,
): void {
  // A message sent to another method's path decodes as that method's output;
  // every Eliza output has a string field 1, so any output type will do for
  // binary, and JSON is checked for being an object.
  try {
    if (binary) fromBinary(method.output, data);
    else {
      const json: unknown = JSON.parse(new TextDecoder().decode(data));
      check(
        json !== null && typeof json === "object" && !Array.isArray(json),
        "JSON output is not an object",
      );
      fromJsonString(method.output, JSON.stringify(json), {
        ignoreUnknownFields: true,
      });
    }
  } catch (e) {
    if (e instanceof Malformed) throw e;
    throw new Malformed(`response message does not decode: ${String(e)}`);
  }
}

function readEnvelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  let at = 0;
  while (at < body.length) {
    check(body.length - at >= 5, "response ends inside an envelope header");
    const flags = body[at]!;
    const length = body.readUInt32BE(at + 1);
    check(body.length - at - 5 >= length, "response ends inside an envelope");
    out.push({ flags, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

function connectErrorOutcome(
  status: number,
  headers: Record<string, string>,
  body: Buffer,
): string {
  check(
    headers["content-type"] === "application/json",
    `Connect error with content type ${headers["content-type"]}`,
  );
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    throw new Malformed(
      `Connect error body is not JSON: ${body.toString("utf8").slice(0, 200)}`,
    );
  }
  check(
    json !== null && typeof json === "object" && !Array.isArray(json),
    "Connect error body is not an object",
  );
  const { code, message, details } = json as Record<string, unknown>;
  check(
    typeof code === "string" && specCodeNames.includes(code),
    `invalid Connect code ${JSON.stringify(code)}`,
  );
  checkMessage(message);
  check(
    details === undefined || Array.isArray(details),
    "details is not an array",
  );
  if (status === 404) {
    check(code === "unimplemented", `404 with code ${code}`);
    return "http404";
  }
  check(
    specHttpStatus[code] === status,
    `HTTP ${status} for code ${code} (the spec says ${specHttpStatus[code]})`,
  );
  return code;
}

function grpcStatusOutcome(
  status: string | undefined,
  message: string | undefined,
): string {
  check(status !== undefined, "no grpc-status");
  check(/^\d+$/.test(status), `invalid grpc-status ${JSON.stringify(status)}`);
  const n = Number(status);
  check(n >= 0 && n <= 16, `grpc-status ${n} out of range`);
  if (message !== undefined) {
    let decoded = message;
    try {
      decoded = decodeURIComponent(message);
    } catch {
      // The spec lets clients show a bad percent-encoding as it is.
    }
    checkMessage(decoded);
  }
  return n === 0 ? "ok" : specCodeNames[n - 1]!;
}

/** The outcome of a response, or Malformed. */
function outcomeOf(c: FuzzCase, r: RawResponse): string {
  const ct = r.headers["content-type"];
  // A response to HEAD has no body.
  if (c.httpMethod === "HEAD" && r.status === 404) return "http404";
  if (r.status === 404) return connectErrorOutcome(r.status, r.headers, r.body);
  if (r.status === 405) {
    check(r.headers["allow"] !== undefined, "405 without Allow");
    return "http405";
  }
  if (r.status === 415) return "http415";
  switch (c.family) {
    case "connect-unary": {
      if (r.status !== 200)
        return connectErrorOutcome(r.status, r.headers, r.body);
      check(
        ct === "application/proto" || ct === "application/json",
        `Connect unary response with content type ${ct}`,
      );
      decodeOutput(
        c.target,
        ct === "application/proto",
        decompress(r.headers["content-encoding"], r.body),
      );
      return "ok";
    }
    case "connect-stream": {
      check(r.status === 200, `Connect stream response with HTTP ${r.status}`);
      check(
        ct === "application/connect+proto" || ct === "application/connect+json",
        `Connect stream response with content type ${ct}`,
      );
      const envelopes = readEnvelopes(r.body);
      const last = envelopes.pop();
      check(
        last !== undefined && last.flags === 2,
        "Connect stream without an end-of-stream message last",
      );
      for (const e of envelopes) {
        check(
          e.flags === 0 || e.flags === 1,
          `response envelope flags ${e.flags}`,
        );
        const data =
          e.flags === 1
            ? decompress(
                r.headers["connect-content-encoding"] ?? "none",
                e.data,
              )
            : e.data;
        decodeOutput(c.target, ct === "application/connect+proto", data);
      }
      let end: unknown;
      try {
        end = JSON.parse(last.data.toString("utf8"));
      } catch {
        throw new Malformed("end-of-stream message is not JSON");
      }
      check(
        end !== null && typeof end === "object" && !Array.isArray(end),
        "end-of-stream message is not an object",
      );
      const error = (end as Record<string, unknown>)["error"];
      if (error === undefined) return "ok";
      check(
        error !== null && typeof error === "object",
        "end-of-stream error is not an object",
      );
      const { code, message } = error as Record<string, unknown>;
      check(
        typeof code === "string" && specCodeNames.includes(code),
        `invalid Connect code ${JSON.stringify(code)}`,
      );
      checkMessage(message);
      return code;
    }
    case "grpc": {
      check(r.status === 200, `gRPC response with HTTP ${r.status}`);
      check(
        /^application\/grpc(\+proto|\+json)?$/.test(ct ?? ""),
        `gRPC response with content type ${ct}`,
      );
      const trailersOnly = r.headers["grpc-status"] !== undefined;
      const source = trailersOnly ? r.headers : r.trailers;
      if (trailersOnly)
        check(r.body.length === 0, "trailers-only response with a body");
      for (const e of readEnvelopes(r.body)) {
        check(
          e.flags === 0 || e.flags === 1,
          `response envelope flags ${e.flags}`,
        );
        const data =
          e.flags === 1
            ? decompress(r.headers["grpc-encoding"] ?? "none", e.data)
            : e.data;
        decodeOutput(c.target, ct !== "application/grpc+json", data);
      }
      return grpcStatusOutcome(source["grpc-status"], source["grpc-message"]);
    }
    case "grpc-web": {
      check(r.status === 200, `gRPC-Web response with HTTP ${r.status}`);
      check(
        /^application\/grpc-web(\+proto|\+json)?$/.test(ct ?? ""),
        `gRPC-Web response with content type ${ct}`,
      );
      const envelopes = readEnvelopes(r.body);
      const last = envelopes.pop();
      check(
        last !== undefined && (last.flags & 0x80) !== 0,
        "gRPC-Web response without a trailers envelope last",
      );
      for (const e of envelopes) {
        check(
          e.flags === 0 || e.flags === 1,
          `response envelope flags ${e.flags}`,
        );
        const data =
          e.flags === 1
            ? decompress(r.headers["grpc-encoding"] ?? "none", e.data)
            : e.data;
        decodeOutput(c.target, ct !== "application/grpc-web+json", data);
      }
      const trailers: Record<string, string> = {};
      for (const line of last.data.toString("latin1").split("\r\n")) {
        if (line === "") continue;
        const colon = line.indexOf(":");
        check(
          colon > 0,
          `trailer line without a colon: ${JSON.stringify(line)}`,
        );
        trailers[line.slice(0, colon).trim().toLowerCase()] = line
          .slice(colon + 1)
          .trim();
      }
      return grpcStatusOutcome(
        trailers["grpc-status"],
        trailers["grpc-message"],
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Valid calls after each batch.

function servingClients(servers: Servers) {
  // A fetch in process does not undo Content-Encoding as a real one does:
  // it asks for none.
  const inProcess = createFetchHttpClient((input, init) => {
    const request = new Request(input, init);
    const headers = new Headers(request.headers);
    headers.delete("accept-encoding");
    return servers.handler.fetch(new Request(request, { headers }));
  });
  const clients = [
    [
      "connect, node:http",
      createElizaServiceClient(servers.http1.url, {
        protocol: connectProtocol,
        transport: "fetch",
      }),
    ],
    [
      "gRPC, h2c",
      createElizaServiceClient(servers.h2c.url, {
        protocol: grpcProtocol,
        transport: "http2",
      }),
    ],
    [
      "gRPC-Web, h2c stream handler",
      createElizaServiceClient(servers.h2cStream.url, {
        protocol: grpcWebProtocol,
        transport: "http2",
        sendCompression: "gzip",
        // Compressed, so that it goes through the decompression gate: a
        // slot leaked by an earlier case would show here.
        compressMinBytes: 0,
      }),
    ],
    [
      "connect GET, fetch handler",
      createElizaServiceClient("http://localhost", {
        protocol: connectProtocol,
        httpClient: inProcess,
        useHttpGet: true,
      }),
    ],
  ] as const;
  return clients;
}

async function checkServing(
  clients: ReturnType<typeof servingClients>,
): Promise<string | undefined> {
  for (const [name, client] of clients) {
    try {
      const say = await client.say(
        { sentence: "still here" },
        { timeoutMs: 20_000 },
      );
      if (say.sentence !== "You said: still here")
        return `${name}: say answered ${JSON.stringify(say.sentence)}`;
      let n = 0;
      for await (const _ of client.introduce(
        { name: "x" },
        { timeoutMs: 20_000 },
      ))
        n++;
      if (n !== 3) return `${name}: introduce sent ${n} messages`;
      if (name !== "connect GET, fetch handler") {
        const p = await client.pontificate(
          [{ sentence: "a" }, { sentence: "b" }],
          { timeoutMs: 20_000 },
        );
        if (p.count !== 2) return `${name}: pontificate counted ${p.count}`;
      }
    } catch (e) {
      return `${name}: ${String(e)}`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------

export function replayCommand(seed: number, index: number): string {
  return `npm run fuzz -- --seed ${seed} --case ${index}`;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed >>> 0;
  const hangMs = options.hangMs ?? 10_000;
  const batch = options.batch ?? 250;
  const maxFailures = options.maxFailures ?? 20;
  const concurrency = options.concurrency ?? 4;
  const log = options.log ?? (() => {});
  const report: FuzzReport = {
    seed,
    cases: 0,
    crashes: 0,
    hangs: 0,
    wrongCodes: 0,
    malformed: 0,
    notServing: 0,
    unsent: 0,
    outcomes: {},
    failures: [],
  };
  /** Cases being sent: a failure that cannot be pinned on one names them all. */
  const inFlight = new Set<FuzzCase>();
  const fail = (kind: FuzzFailure["kind"], detail: string, c?: FuzzCase) => {
    switch (kind) {
      case "crash":
        report.crashes++;
        break;
      case "hang":
        report.hangs++;
        break;
      case "wrong code":
        report.wrongCodes++;
        break;
      case "malformed":
        report.malformed++;
        break;
      case "not serving":
        report.notServing++;
        break;
    }
    if (report.failures.length >= maxFailures) return;
    const cases = c !== undefined ? [c] : [...inFlight];
    report.failures.push({
      kind,
      detail,
      ...(cases.length === 0
        ? {}
        : {
            case: cases
              .map(
                (k) =>
                  `${describeCase(k)}\n  replay: ${replayCommand(seed, k.index)}`,
              )
              .join(
                c === undefined
                  ? "\n(or, as it was sent at the same time)\n"
                  : "",
              ),
          }),
    });
  };
  const onProcessFailure = (error: unknown) =>
    fail(
      "crash",
      `uncaught in the process: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  process.on("uncaughtException", onProcessFailure);
  process.on("unhandledRejection", onProcessFailure);
  const servers = await startServers();
  const h2 = new H2Client(servers.h2c.url);
  const h2Stream = new H2Client(servers.h2cStream.url);
  const clients = servingClients(servers);
  const started = Date.now();

  const runCase = async (index: number) => {
    const c = buildCase(seed, index);
    inFlight.add(c);
    options.onCase?.(index);
    const result =
      c.transport === "http1"
        ? await sendHttp1(servers.http1.url, c, hangMs)
        : c.transport === "h2c"
          ? await h2.send(c, hangMs)
          : c.transport === "h2c-stream"
            ? await h2Stream.send(c, hangMs)
            : await sendFetch(servers.handler, c, hangMs);
    report.cases++;
    const allowed = allowedOutcomes(c);
    let outcome: string;
    switch (result.kind) {
      case "unsent":
        report.unsent++;
        outcome = "unsent";
        break;
      case "hang":
        fail("hang", `no response within ${hangMs} ms`, c);
        outcome = "hang";
        break;
      case "threw":
        fail("crash", `handler.fetch rejected: ${String(result.error)}`, c);
        outcome = "threw";
        break;
      case "aborted":
        outcome = "aborted";
        break;
      case "reset":
        outcome = "reset";
        if (!allowed.has("reset"))
          fail("wrong code", `reset: ${result.detail}`, c);
        break;
      case "response": {
        const r = result.response;
        const seen = `HTTP ${r.status}, ${JSON.stringify(r.headers)}, trailers ${JSON.stringify(r.trailers)}, body ${r.body.toString("latin1").slice(0, 300)}`;
        try {
          outcome = outcomeOf(c, r);
          if (!allowed.has(outcome)) {
            fail(
              "wrong code",
              `got ${outcome}, allowed ${[...allowed].join(", ")} (${seen})`,
              c,
            );
          }
        } catch (e) {
          if (!(e instanceof Malformed)) throw e;
          outcome = "malformed";
          fail("malformed", `${e.message} (${seen})`, c);
        }
        break;
      }
    }
    report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1;
    while (servers.thrown.length > 0) {
      const e = servers.thrown.shift();
      fail(
        "crash",
        `onError got a non-ConnectError: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      );
    }
    inFlight.delete(c);
  };

  let lastLog = 0;
  try {
    let next = options.only ?? 0;
    const last =
      options.only !== undefined
        ? options.only + 1
        : (options.cases ?? Infinity);
    while (next < last && report.failures.length < maxFailures) {
      if (
        options.durationMs !== undefined &&
        Date.now() - started >= options.durationMs
      )
        break;
      // A batch of cases, `concurrency` at a time, then valid calls.
      const end = Math.min(last, next + batch);
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < end) await runCase(next++);
        }),
      );
      const problem = await checkServing(clients);
      if (problem !== undefined)
        fail("not serving", `after case ${end - 1}: ${problem}`);
      if (Date.now() - lastLog < 10_000 && next < last) continue;
      lastLog = Date.now();
      log(
        `${report.cases} cases, ${report.crashes} crashes, ${report.hangs} hangs, ${report.wrongCodes} wrong codes, ${report.malformed} malformed, ${report.notServing} not serving (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  } finally {
    h2.close();
    h2Stream.close();
    await servers.close();
    // Late failures of the last cases still count.
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.off("uncaughtException", onProcessFailure);
    process.off("unhandledRejection", onProcessFailure);
  }
  return report;
}

export function formatReport(r: FuzzReport): string {
  return [
    `seed ${r.seed}: ${r.cases} cases, ${r.crashes} crashes, ${r.hangs} hangs, ${r.wrongCodes} wrong codes, ${r.malformed} malformed responses, ${r.notServing} times not serving, ${r.unsent} refused by the client library`,
    `outcomes: ${Object.entries(r.outcomes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    ...r.failures.map(
      (f) =>
        `\n${f.kind.toUpperCase()}: ${f.detail}${f.case === undefined ? "" : `\n${f.case}`}`,
    ),
  ].join("\n");
}
