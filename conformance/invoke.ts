// Makes the call one ClientCompatRequest describes with the generated
// ConformanceService client, and reports what happened as a
// ClientCompatResponse: the response headers, every payload, the error, the
// trailers and the requests never sent. `error` (ClientErrorResult) is used
// only when the call could not be made at all.
import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Any } from "@bufbuild/protobuf/wkt";
import {
  ClientCompatResponseSchema,
  ClientResponseResultSchema,
} from "./gen/connectrpc/conformance/v1/client_compat_pb.ts";
import type {
  ClientCompatRequest,
  ClientCompatResponse,
  ClientResponseResult,
} from "./gen/connectrpc/conformance/v1/client_compat_pb.ts";
import {
  Codec,
  Compression,
  HTTPVersion,
  Protocol,
  StreamType,
} from "./gen/connectrpc/conformance/v1/config_pb.ts";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ConformancePayloadSchema,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
  UnimplementedRequestSchema,
} from "./gen/connectrpc/conformance/v1/service_pb.ts";
import type {
  BidiStreamRequest,
  BidiStreamResponse,
  ConformancePayload,
} from "./gen/connectrpc/conformance/v1/service_pb.ts";
import {
  ConformanceServiceDefinition,
  ConnectError,
  createConformanceServiceClient,
  connectProtocol,
  grpcProtocol,
  grpcWebProtocol,
  jsonCodec,
  type CallOptions,
  type ConformanceServiceClient,
  type NodeClientOptions,
} from "./gen/connectrpc/conformance/v1/service.ConformanceService.ts";
import { createHttpsHttpClient } from "./https-client.ts";
import {
  appendProtoHeaders,
  conformanceRegistry,
  errorToProto,
  headersToProto,
  sleep,
} from "./protocol.ts";

/** A promise and the function that resolves it. */
function deferred(): [Promise<void>, () => void] {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return [promise, resolve];
}

/** Runs one request; never rejects. */
export async function runClientCompatRequest(
  request: ClientCompatRequest,
): Promise<ClientCompatResponse> {
  try {
    const result = await invoke(request);
    return create(ClientCompatResponseSchema, {
      testName: request.testName,
      result: { case: "response", value: result },
    });
  } catch (e) {
    return create(ClientCompatResponseSchema, {
      testName: request.testName,
      result: {
        case: "error",
        value: { message: e instanceof Error ? e.message : String(e) },
      },
    });
  }
}

// Clients by their configuration, so that calls of one configuration share
// their HTTP/2 session or keep-alive connections, as an application's would.
const clients = new Map<string, ConformanceServiceClient>();

function clientFor(request: ClientCompatRequest): ConformanceServiceClient {
  const key = JSON.stringify([
    request.protocol,
    request.codec,
    request.compression,
    request.httpVersion,
    request.host,
    request.port,
    Buffer.from(request.serverTlsCert).toString("base64"),
    Buffer.from(request.clientTlsCreds?.cert ?? []).toString("base64"),
    request.messageReceiveLimit,
    request.useGetHttpMethod,
  ]);
  let client = clients.get(key);
  if (client === undefined) {
    client = createClient(request);
    clients.set(key, client);
  }
  return client;
}

function createClient(request: ClientCompatRequest): ConformanceServiceClient {
  const protocol = (
    {
      [Protocol.CONNECT]: connectProtocol,
      [Protocol.GRPC]: grpcProtocol,
      [Protocol.GRPC_WEB]: grpcWebProtocol,
    } as const
  )[request.protocol as number];
  if (protocol === undefined) {
    throw new Error(`unsupported protocol ${request.protocol}`);
  }
  if (request.codec !== Codec.PROTO && request.codec !== Codec.JSON) {
    throw new Error(`unsupported codec ${request.codec}`);
  }
  const sendCompression = (
    {
      [Compression.UNSPECIFIED]: "identity",
      [Compression.IDENTITY]: "identity",
      [Compression.GZIP]: "gzip",
      [Compression.BR]: "br",
      [Compression.ZSTD]: "zstd",
      [Compression.DEFLATE]: "deflate",
    } as const
  )[request.compression as number];
  if (sendCompression === undefined) {
    throw new Error(`unsupported compression ${request.compression}`);
  }
  const tls = request.serverTlsCert.length > 0;
  const host = request.host.includes(":") ? `[${request.host}]` : request.host;
  const baseUrl = `${tls ? "https" : "http"}://${host}:${request.port}`;
  const clientCert = request.clientTlsCreds;
  const tlsOptions = {
    ca: Buffer.from(request.serverTlsCert),
    ...(clientCert !== undefined && clientCert.cert.length > 0
      ? { cert: Buffer.from(clientCert.cert), key: Buffer.from(clientCert.key) }
      : {}),
  };
  const options: NodeClientOptions = {
    protocol,
    ...(request.codec === Codec.JSON
      ? { codec: jsonCodec({ registry: conformanceRegistry }) }
      : {}),
    sendCompression,
    // Every request in the chosen compression, however small: the reference
    // server checks that it is.
    compressMinBytes: 0,
    // GET applies to NO_SIDE_EFFECTS methods only (IdempotentUnary).
    useHttpGet: request.useGetHttpMethod,
    ...(request.messageReceiveLimit > 0
      ? { readMaxBytes: request.messageReceiveLimit }
      : {}),
  };
  switch (request.httpVersion) {
    case HTTPVersion.HTTP_VERSION_1:
      if (protocol === grpcProtocol) {
        throw new Error("gRPC needs HTTP/2");
      }
      // fetch speaks HTTP/1.1 but takes no CA: over TLS, node:https.
      return createConformanceServiceClient(
        baseUrl,
        tls
          ? { ...options, httpClient: createHttpsHttpClient(tlsOptions) }
          : { ...options, transport: "fetch" },
      );
    case HTTPVersion.HTTP_VERSION_2:
      return createConformanceServiceClient(baseUrl, {
        ...options,
        transport: "http2",
        ...(tls ? { http2: { sessionOptions: tlsOptions } } : {}),
      });
    default:
      throw new Error(`unsupported HTTP version ${request.httpVersion}`);
  }
}

function unpackAll<Desc extends DescMessage>(
  request: ClientCompatRequest,
  desc: Desc,
): MessageShape<Desc>[] {
  return request.requestMessages.map((any: Any) => {
    const message = anyUnpack(any, desc);
    if (message === undefined) {
      throw new Error(
        `request message of type ${any.typeUrl} where ${desc.typeName} was expected`,
      );
    }
    return message;
  });
}

function unpackOne<Desc extends DescMessage>(
  request: ClientCompatRequest,
  desc: Desc,
): MessageShape<Desc> {
  const messages = unpackAll(request, desc);
  if (messages.length !== 1) {
    throw new Error(
      `expected exactly one request message, got ${messages.length}`,
    );
  }
  return messages[0]!;
}

/** When to cancel, from the request's Cancel: no timing at all means right after close-send. */
function cancelTiming(request: ClientCompatRequest) {
  const timing = request.cancel?.cancelTiming;
  return {
    beforeCloseSend: timing?.case === "beforeCloseSend",
    afterCloseSendMs:
      timing?.case === "afterCloseSendMs"
        ? timing.value
        : request.cancel !== undefined && timing?.case === undefined
          ? 0
          : undefined,
    afterNumResponses:
      timing?.case === "afterNumResponses" ? timing.value : undefined,
  };
}

/** What a call has seen so far, turned into the result at the end. */
class Outcome {
  header: Headers | undefined;
  trailer: Headers | undefined;
  readonly payloads: ConformancePayload[] = [];
  error: unknown = undefined;
  failed = false;
  unsent = 0;

  addPayload(payload: ConformancePayload | undefined): void {
    this.payloads.push(payload ?? create(ConformancePayloadSchema));
  }

  fail(error: unknown): void {
    this.failed = true;
    this.error = error;
  }

  result(): ClientResponseResult {
    // An error carries the headers and trailers that came with it (all of
    // them, for a unary call): report them where nothing better is known.
    const metadata =
      this.failed && error(this.error) !== undefined
        ? error(this.error)!.metadata
        : undefined;
    const header = this.header ?? metadata;
    const trailer =
      this.trailer !== undefined && [...this.trailer].length > 0
        ? this.trailer
        : (metadata ?? this.trailer);
    return create(ClientResponseResultSchema, {
      responseHeaders: header === undefined ? [] : headersToProto(header),
      payloads: this.payloads,
      error: this.failed ? errorToProto(this.error) : undefined,
      responseTrailers: trailer === undefined ? [] : headersToProto(trailer),
      numUnsentRequests: this.unsent,
    });
  }
}

function error(reason: unknown): ConnectError | undefined {
  return reason instanceof ConnectError ? reason : undefined;
}

/**
 * Request messages as the client reads them, counting those it takes. A
 * push-based queue for full-duplex bidi; `close` ends it (close-send).
 */
class RequestQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;
  taken = 0;

  push(item: T): void {
    if (this.waiting !== undefined) {
      const wake = this.waiting;
      this.waiting = undefined;
      this.taken++;
      wake({ done: false, value: item });
    } else {
      this.items.push(item);
    }
  }

  close(): void {
    this.closed = true;
    if (this.waiting !== undefined && this.items.length === 0) {
      const wake = this.waiting;
      this.waiting = undefined;
      wake({ done: true, value: undefined });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) {
          this.taken++;
          return Promise.resolve({ done: false, value: this.items.shift()! });
        }
        if (this.closed) {
          return Promise.resolve({ done: true, value: undefined });
        }
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.closed = true;
        this.items.length = 0;
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

async function invoke(
  request: ClientCompatRequest,
): Promise<ClientResponseResult> {
  if (request.rawRequest !== undefined) {
    // client_compat.proto: only the reference client uses raw_request; a
    // client under test may answer it with an error.
    throw new Error("raw_request is only supported by the reference client");
  }
  const service = request.service ?? ConformanceServiceDefinition.typeName;
  if (service !== ConformanceServiceDefinition.typeName) {
    throw new Error(`unknown service "${service}"`);
  }
  const client = clientFor(request);
  const headers = new Headers();
  appendProtoHeaders(headers, request.requestHeaders);
  const controller = new AbortController();
  const options: CallOptions = {
    headers,
    signal: controller.signal,
    ...(request.timeoutMs !== undefined
      ? { timeoutMs: request.timeoutMs }
      : {}),
  };
  const timers: NodeJS.Timeout[] = [];
  const call: Call = {
    options,
    cancel: () => controller.abort(),
    cancelAfter: (ms) => void timers.push(setTimeout(call.cancel, ms)),
  };
  try {
    switch (request.method ?? methodOf(request.streamType)) {
      case "Unary":
        return await unary(request, client.unary, UnaryRequestSchema, call);
      case "IdempotentUnary":
        return await unary(
          request,
          client.idempotentUnary,
          IdempotentUnaryRequestSchema,
          call,
        );
      case "Unimplemented":
        return await unary(
          request,
          client.unimplemented,
          UnimplementedRequestSchema,
          call,
        );
      case "ServerStream":
        return await serverStream(request, client, call);
      case "ClientStream":
        return await clientStream(request, client, call);
      case "BidiStream":
        return request.streamType === StreamType.FULL_DUPLEX_BIDI_STREAM
          ? await fullDuplexBidiStream(request, client, call)
          : await halfDuplexBidiStream(request, client, call);
      default:
        throw new Error(`unknown method "${request.method}"`);
    }
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
}

/** The runner fills in `method`; were it left out, the stream type names it. */
function methodOf(streamType: StreamType): string | undefined {
  switch (streamType) {
    case StreamType.UNARY:
      return "Unary";
    case StreamType.SERVER_STREAM:
      return "ServerStream";
    case StreamType.CLIENT_STREAM:
      return "ClientStream";
    case StreamType.HALF_DUPLEX_BIDI_STREAM:
    case StreamType.FULL_DUPLEX_BIDI_STREAM:
      return "BidiStream";
    default:
      return undefined;
  }
}

/** One call's options and how to cancel it, now or later. */
interface Call {
  readonly options: CallOptions;
  cancel(): void;
  cancelAfter(ms: number): void;
}

/** The `raw` form of a unary method of the generated client. */
interface UnaryRaw<Desc extends DescMessage> {
  raw(
    request: MessageShape<Desc>,
    options?: CallOptions,
  ): Promise<{ message: object; header: Headers; trailer: Headers }>;
}

async function unary<Desc extends DescMessage>(
  request: ClientCompatRequest,
  method: UnaryRaw<Desc>,
  desc: Desc,
  call: Call,
): Promise<ClientResponseResult> {
  const { options, cancelAfter } = call;
  const message = unpackOne(request, desc);
  const outcome = new Outcome();
  await sleep(request.requestDelayMs);
  // A unary call closes its send side as it starts: the cancel is armed first.
  const { afterCloseSendMs } = cancelTiming(request);
  if (afterCloseSendMs !== undefined) cancelAfter(afterCloseSendMs);
  try {
    const response = await method.raw(message, options);
    outcome.header = response.header;
    outcome.trailer = response.trailer;
    // Unimplemented's response has no payload.
    outcome.addPayload(
      (response.message as { payload?: ConformancePayload | undefined })
        .payload,
    );
  } catch (e) {
    outcome.fail(e);
  }
  return outcome.result();
}

async function serverStream(
  request: ClientCompatRequest,
  client: ConformanceServiceClient,
  call: Call,
): Promise<ClientResponseResult> {
  const { options, cancel, cancelAfter } = call;
  const message = unpackOne(request, ServerStreamRequestSchema);
  const timing = cancelTiming(request);
  const outcome = new Outcome();
  await sleep(request.requestDelayMs);
  const started = client.serverStream.raw(message, options);
  if (timing.afterCloseSendMs !== undefined)
    cancelAfter(timing.afterCloseSendMs);
  if (timing.afterNumResponses === 0) cancel();
  try {
    const response = await started;
    outcome.header = response.header;
    outcome.trailer = response.trailer;
    for await (const m of response.messages) {
      outcome.addPayload(m.payload);
      if (outcome.payloads.length === timing.afterNumResponses) cancel();
    }
  } catch (e) {
    outcome.fail(e);
  }
  return outcome.result();
}

/**
 * The requests of a client stream or half-duplex bidi stream: each after the
 * request delay, then close-send, or a cancel instead of it. `onCloseSend`
 * runs when the last one has been taken.
 */
async function* halfDuplexRequests<T>(
  request: ClientCompatRequest,
  messages: readonly T[],
  outcome: Outcome,
  cancel: () => void,
  finished: Promise<unknown>,
  onCloseSend: () => void,
): AsyncGenerator<T> {
  outcome.unsent = messages.length;
  for (const message of messages) {
    await sleep(request.requestDelayMs);
    yield message;
    // The client asked for the next one: this one is on its way.
    outcome.unsent--;
  }
  if (cancelTiming(request).beforeCloseSend) {
    // Cancel instead of closing the send side: the iterable does not end
    // until the call has.
    cancel();
    await finished;
    return;
  }
  onCloseSend();
}

async function clientStream(
  request: ClientCompatRequest,
  client: ConformanceServiceClient,
  call: Call,
): Promise<ClientResponseResult> {
  const { options, cancel, cancelAfter } = call;
  const messages = unpackAll(request, ClientStreamRequestSchema);
  const timing = cancelTiming(request);
  const outcome = new Outcome();
  const [finished, finish] = deferred();
  const requests = halfDuplexRequests(
    request,
    messages,
    outcome,
    cancel,
    finished,
    () => {
      if (timing.afterCloseSendMs !== undefined)
        cancelAfter(timing.afterCloseSendMs);
    },
  );
  try {
    const response = await client.clientStream.raw(requests, {
      ...options,
      onHeader: (header) => (outcome.header = header),
    });
    outcome.header = response.header;
    outcome.trailer = response.trailer;
    outcome.addPayload(response.message.payload);
  } catch (e) {
    outcome.fail(e);
  } finally {
    finish();
  }
  return outcome.result();
}

async function halfDuplexBidiStream(
  request: ClientCompatRequest,
  client: ConformanceServiceClient,
  call: Call,
): Promise<ClientResponseResult> {
  const { options, cancel, cancelAfter } = call;
  const messages = unpackAll(request, BidiStreamRequestSchema);
  const timing = cancelTiming(request);
  const outcome = new Outcome();
  const [finished, finish] = deferred();
  const requests = halfDuplexRequests(
    request,
    messages,
    outcome,
    cancel,
    finished,
    () => {
      if (timing.afterCloseSendMs !== undefined)
        cancelAfter(timing.afterCloseSendMs);
      if (timing.afterNumResponses === 0) cancel();
    },
  );
  try {
    const response = await client.bidiStream.raw(requests, options);
    outcome.header = response.header;
    outcome.trailer = response.trailer;
    for await (const m of response.messages) {
      outcome.addPayload(m.payload);
      if (outcome.payloads.length === timing.afterNumResponses) cancel();
    }
  } catch (e) {
    outcome.fail(e);
  } finally {
    finish();
  }
  return outcome.result();
}

/** Full duplex: send a request, read a response, and so on; then the rest of the responses. */
async function fullDuplexBidiStream(
  request: ClientCompatRequest,
  client: ConformanceServiceClient,
  call: Call,
): Promise<ClientResponseResult> {
  const { options, cancel, cancelAfter } = call;
  const messages = unpackAll(request, BidiStreamRequestSchema);
  const timing = cancelTiming(request);
  const outcome = new Outcome();
  const queue = new RequestQueue<BidiStreamRequest>();
  const started = client.bidiStream.raw(queue, options);
  // Awaited only once the first request is out; a failure before is kept for then.
  started.catch(() => {});
  let responses: AsyncIterator<BidiStreamResponse> | undefined;
  const next = async () => {
    if (responses === undefined) {
      const response = await started;
      outcome.header = response.header;
      outcome.trailer = response.trailer;
      responses = response.messages[Symbol.asyncIterator]();
    }
    const result = await responses.next();
    if (result.done !== true) {
      outcome.addPayload(result.value.payload);
      if (outcome.payloads.length === timing.afterNumResponses) cancel();
    }
    return result.done !== true;
  };
  try {
    for (const message of messages) {
      await sleep(request.requestDelayMs);
      queue.push(message);
      if (timing.afterNumResponses === 0) cancel();
      await next();
    }
    if (timing.beforeCloseSend) {
      cancel();
    } else {
      queue.close();
      if (timing.afterCloseSendMs !== undefined)
        cancelAfter(timing.afterCloseSendMs);
      if (timing.afterNumResponses === 0) cancel();
    }
    while (await next()) {
      // Reads the responses after close-send.
    }
  } catch (e) {
    outcome.fail(e);
  } finally {
    queue.close();
  }
  outcome.unsent = messages.length - queue.taken;
  return outcome.result();
}
