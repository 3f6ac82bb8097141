import {
  create,
  isMessage,
  type DescMessage,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  clientCallSignal,
  clientCallStart,
  clientNeverAborted,
  type CallOptions,
  type ClientOptions,
  type ClientConfig,
  type ClientTimeoutHeader,
  type ClientUnaryCall,
  type StreamCaller,
  type StreamInput,
  type UnaryCaller,
} from "./config.ts";
import {
  httpFieldsHeaders,
  httpFieldsOf,
  type HttpFields,
} from "./http-client.ts";
import { readBody } from "../core/body.ts";
import { Code } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import type { Compression } from "../core/compression.ts";
import { envelopeEncodeMessage } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import {
  applyInterceptors,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "../core/interceptors.ts";
import type { MethodInfo } from "../core/method.ts";
import {
  createContextValues,
  type ContextValues,
} from "../core/context-values.ts";

/**
 * The protocol's part of a unary call, innermost of the interceptors: send
 * the request, read the whole response.
 */
export type UnarySend = (
  call: ClientUnaryCall,
  sendCompression: Compression | undefined,
  /**
   * The request's headers: the call's own record, or a copy of what the
   * interceptors left in `request.header`; the protocol adds its own to it.
   */
  fields: HttpFields,
) => Promise<UnaryResponse>;

/**
 * The protocol's part of a streaming call: send `body` (the request messages
 * already in envelopes) and answer once the response headers are in, its
 * messages still to be read. The body is whole for server streaming, whose
 * one request is all there is to send: browsers stream a request body only
 * over HTTP/2, and a whole one goes over any HTTP. Client and bidi
 * streaming send their requests as they come.
 */
export type StreamSend = (
  request: StreamRequest,
  sendCompression: Compression | undefined,
  /** A copy of `request.header` as the interceptors left it, for the protocol to add to. */
  fields: HttpFields,
  body: Uint8Array | AsyncIterable<Uint8Array>,
) => Promise<StreamResponse>;

/**
 * A unary caller of any protocol: headers, compression and the deadline are
 * set up, interceptors run around `send`, and every failure becomes a
 * ConnectError (Canceled or DeadlineExceeded when the signal fired).
 */
export function clientUnaryCaller(
  config: ClientConfig,
  timeoutHeader: ClientTimeoutHeader,
  send: UnarySend,
  /** Connect only: whether the client sends NO_SIDE_EFFECTS methods with GET. */
  useGet = false,
): UnaryCaller {
  const interceptors = config.options.interceptors;
  const intercepted = interceptors !== undefined && interceptors.length > 0;
  return (method, input, callOptions = {}) => {
    let fields: HttpFields;
    let sendCompression: Compression | undefined;
    let timeoutMs: number | undefined;
    try {
      [fields, sendCompression, timeoutMs] = clientCallStart(
        config,
        callOptions,
        timeoutHeader,
      );
    } catch (e) {
      return Promise.reject(e);
    }
    if (
      intercepted ||
      timeoutMs !== undefined ||
      callOptions.signal !== undefined
    ) {
      return clientUnaryCallWatched(
        config,
        send,
        useGet,
        method,
        input,
        callOptions,
        fields,
        sendCompression,
        timeoutMs,
      );
    }
    // Nothing can abort a unary call without a deadline or a caller's
    // signal: it gets the shared signal that never fires, no controller,
    // nothing to clean up, and so no async function around the send (with
    // the typed method's, about 4 % of such a call's allocation).
    let response: Promise<UnaryResponse>;
    try {
      response = send(
        clientUnaryCall(config, useGet, method, input, clientNeverAborted),
        sendCompression,
        fields,
      );
    } catch (e) {
      return Promise.reject(clientCallError(e, clientNeverAborted));
    }
    return response.then(
      (answer) => clientUnaryAnswered(answer, callOptions, clientNeverAborted),
      clientUnaryFailed,
    );
  };
}

// One function for every call without a signal of its own: nothing to capture.
function clientUnaryFailed(error: unknown): never {
  throw clientCallError(error, clientNeverAborted);
}

/**
 * A unary call with a signal of its own (a deadline, the caller's signal,
 * or interceptors, which may listen to it), aborted and let go when the
 * call ends.
 */
async function clientUnaryCallWatched(
  config: ClientConfig,
  send: UnarySend,
  useGet: boolean,
  method: MethodInfo,
  input: MessageInitShape<DescMessage>,
  callOptions: CallOptions,
  fields: HttpFields,
  sendCompression: Compression | undefined,
  timeoutMs: number | undefined,
): Promise<UnaryResponse> {
  const interceptors = config.options.interceptors;
  const [controller, cleanup] = clientCallSignal(timeoutMs, callOptions);
  const signal = controller.signal;
  try {
    const call = clientUnaryCall(config, useGet, method, input, signal);
    // Without interceptors, no chain, no closure and no Headers to make.
    const response = await (interceptors !== undefined &&
    interceptors.length > 0
      ? applyInterceptors(
          (request: UnaryRequest) =>
            send(request, sendCompression, httpFieldsOf(request.header)).then(
              clientUnaryPlain,
            ),
          interceptors,
        )({
          ...call,
          stream: false,
          service: method.service,
          header: httpFieldsHeaders(fields),
          contextValues: clientContextValues(callOptions, interceptors),
        })
      : send(call, sendCompression, fields));
    return clientUnaryAnswered(response, callOptions, signal);
  } catch (e) {
    throw clientCallError(e, signal);
  } finally {
    cleanup();
  }
}

/** What the protocol sees of a unary call; interceptors see a UnaryRequest made of it. */
function clientUnaryCall(
  config: ClientConfig,
  useGet: boolean,
  method: MethodInfo,
  input: MessageInitShape<DescMessage>,
  signal: AbortSignal,
): ClientUnaryCall {
  return {
    method,
    requestMethod: useGet && method.noSideEffects ? "GET" : "POST",
    url: clientUrl(config, method),
    signal,
    message: clientMessage(method.input, input),
  };
}

/**
 * A protocol's response as a plain object for interceptors, which may spread
 * it: a protocol may answer with headers and trailers that are getters
 * (ConnectUnaryResponse), which a spread would leave out.
 */
function clientUnaryPlain(response: UnaryResponse): UnaryResponse {
  return {
    stream: false,
    method: response.method,
    header: response.header,
    trailer: response.trailer,
    message: response.message,
  };
}

/** Hands the response's headers and trailers to the caller's callbacks. */
function clientUnaryAnswered(
  response: UnaryResponse,
  callOptions: CallOptions,
  signal: AbortSignal,
): UnaryResponse {
  try {
    callOptions.onHeader?.(response.header);
    callOptions.onTrailer?.(response.trailer);
  } catch (e) {
    throw clientCallError(e, signal);
  }
  return response;
}

/**
 * A streaming caller of any protocol, for every kind. The response's
 * messages end with the call's status; leaving them early cancels the call.
 */
export function clientStreamCaller(
  config: ClientConfig,
  timeoutHeader: ClientTimeoutHeader,
  send: StreamSend,
): StreamCaller {
  const { codec, compressMinBytes } = config;
  const interceptors = config.options.interceptors;
  return async (method, input, callOptions = {}) => {
    const [fields, sendCompression, timeoutMs] = clientCallStart(
      config,
      callOptions,
      timeoutHeader,
    );
    const [controller, cleanup] = clientCallSignal(timeoutMs, callOptions);
    const signal = controller.signal;
    // Set when producing the requests failed: the call's error.
    const failure: ClientRequestFailure = {};
    // Closed once the call is over: a server may answer before reading every
    // request, and the rest is not sent (nor produced).
    let requestBody: AsyncGenerator<Uint8Array> | undefined;
    const closeRequests = () => {
      requestBody?.return(undefined).catch(() => {});
    };
    let response: StreamResponse;
    try {
      response = await applyInterceptors(async (request: StreamRequest) => {
        requestBody = clientEncodeRequests(
          request.message,
          codec,
          method.input,
          sendCompression,
          compressMinBytes,
          signal,
          failure,
        );
        // Whatever an interceptor made of the one request is sent as it is,
        // none or several included: the server judges them, as it would a
        // stream.
        return send(
          request,
          sendCompression,
          httpFieldsOf(request.header),
          method.kind === "server_streaming"
            ? await readBody(requestBody, Number.POSITIVE_INFINITY)
            : requestBody,
        );
      }, interceptors)({
        stream: true,
        service: method.service,
        method,
        requestMethod: "POST",
        url: clientUrl(config, method),
        header: httpFieldsHeaders(fields),
        signal,
        contextValues: clientContextValues(callOptions, interceptors),
        message: clientCreateMessages(method.input, input),
      });
    } catch (e) {
      closeRequests();
      cleanup();
      throw failure.error ?? clientCallError(e, signal);
    }
    callOptions.onHeader?.(response.header);
    return {
      ...response,
      message: clientFinishStream(
        response,
        controller,
        callOptions,
        failure,
        () => {
          cleanup();
          closeRequests();
        },
      ),
    };
  };
}

/**
 * A method's URL, made once per client and method: a string built per call
 * would be hashed anew wherever it is looked up (the node:http2 client
 * parses each URL once, and finds it by the string).
 */
function clientUrl(config: ClientConfig, method: MethodInfo): string {
  let url = config.urls.get(method);
  if (url === undefined) {
    url = config.baseUrl + method.path;
    config.urls.set(method, url);
  }
  return url;
}

/**
 * A call's values: its options', else fresh ones for its interceptors (one
 * may set a value for the next). Without interceptors nothing reads them,
 * and the call allocates none.
 */
function clientContextValues(
  callOptions: CallOptions,
  interceptors: ClientOptions["interceptors"],
): ContextValues {
  return (
    callOptions.contextValues ??
    (interceptors === undefined || interceptors.length === 0
      ? clientNoContextValues
      : createContextValues())
  );
}

/**
 * The values of a call without interceptors, which no code reads: shared by
 * all such calls, so it refuses to be written rather than carry a value from
 * one call to the next.
 */
const clientNoContextValues: ContextValues = Object.freeze({
  get: <T>(key: { readonly defaultValue: T }): T => key.defaultValue,
  set(): never {
    throw new Error("these context values are read-only");
  },
  delete(): never {
    throw new Error("these context values are read-only");
  },
});

/** The failure of a streaming call's requests, once they failed. */
interface ClientRequestFailure {
  error?: ConnectError;
}

/**
 * The request messages in envelopes. When producing them fails (the
 * caller's iterable threw, or a message would not encode), the call fails
 * with that error (`failure`), not with what the transport makes of a body
 * that broke off (unavailable, "fetch failed"), which would invite a retry.
 * A ConnectError stays as it is, anything else is unknown with the
 * caller's message and the error as cause. The transport still sees the
 * body fail, and resets the request (an abort here would end the upload
 * gracefully over HTTP/2, and the server would take it for complete).
 */
async function* clientEncodeRequests(
  messages: AsyncIterable<Message>,
  codec: Codec,
  desc: DescMessage,
  compression: Compression | undefined,
  compressMinBytes: number,
  signal: AbortSignal,
  failure: ClientRequestFailure,
): AsyncGenerator<Uint8Array> {
  try {
    for await (const message of messages) {
      yield await envelopeEncodeMessage(
        codec.encode(desc, message),
        compression,
        compressMinBytes,
      );
    }
  } catch (e) {
    // A call canceled first fails as canceled, whatever its requests do.
    if (!signal.aborted) failure.error ??= ConnectError.from(e, Code.Unknown);
    throw e;
  }
}

/**
 * The messages as the caller reads them: errors become ConnectErrors (the
 * deadline's or the cancellation's when the signal fired), trailers are
 * reported at the end, leaving early cancels the call, and either way the
 * call is cleaned up and the request messages are closed.
 *
 * Once the signal has fired, the next read fails with its reason, whatever
 * the transport has buffered: a caller that cancelled must not get a message
 * or a successful end that arrived before it did.
 */
async function* clientFinishStream(
  response: StreamResponse,
  controller: AbortController,
  callOptions: CallOptions,
  failure: ClientRequestFailure,
  finish: () => void,
): AsyncGenerator<Message> {
  const signal = controller.signal;
  let complete = false;
  try {
    for await (const message of response.message) {
      if (signal.aborted) throw signal.reason;
      yield message;
    }
    if (signal.aborted) throw signal.reason;
    // A response that ended well does not hide the requests' failure.
    if (failure.error !== undefined) throw failure.error;
    complete = true;
  } catch (e) {
    throw failure.error ?? clientCallError(e, controller.signal);
  } finally {
    if (!complete) {
      controller.abort(
        new ConnectError("the call was canceled", Code.Canceled),
      );
    }
    finish();
  }
  callOptions.onTrailer?.(response.trailer);
}

/** Any failure as a ConnectError: the signal's reason once it has fired. */
function clientCallError(error: unknown, signal: AbortSignal): ConnectError {
  return signal.aborted
    ? ConnectError.from(signal.reason, Code.Canceled)
    : ConnectError.from(error);
}

/** A request message from a message or its fields. */
function clientMessage(
  desc: DescMessage,
  value: MessageInitShape<DescMessage>,
): Message {
  return isMessage(value, desc) ? value : create(desc, value);
}

async function* clientCreateMessages(
  desc: DescMessage,
  input: StreamInput,
): AsyncGenerator<Message> {
  for await (const value of input) {
    yield clientMessage(desc, value);
  }
}
