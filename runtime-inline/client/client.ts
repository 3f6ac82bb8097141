import type {
  DescMessage,
  Message,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import type {
  CallOptions,
  StreamCaller,
  UnaryCaller,
  UnaryResult,
} from "./config.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { StreamResponse, UnaryResponse } from "../core/interceptors.ts";
import type { MethodInfo } from "../core/method.ts";

/**
 * A unary method of a generated client: call it for the response message,
 * or call `raw` for the message with response headers and trailers.
 * @public
 */
export interface UnaryMethod<Input extends DescMessage, Output> {
  (request: MessageInitShape<Input>, options?: CallOptions): Promise<Output>;
  raw(
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): Promise<UnaryResult<Output>>;
}

/** Binds a caller to one method, typed by the method's generated schemas. */
export function clientUnaryMethod<
  Input extends DescMessage,
  Output extends DescMessage,
>(
  call: UnaryCaller,
  method: MethodInfo & { readonly input: Input; readonly output: Output },
): UnaryMethod<Input, MessageShape<Output>> {
  // Not async functions: each hands the caller's promise on through one
  // then(), where an async function adds its own promise and frame.
  const raw = (
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): Promise<UnaryResult<MessageShape<Output>>> =>
    call(method, request, options).then(
      clientUnaryResult as (
        response: UnaryResponse,
      ) => UnaryResult<MessageShape<Output>>,
    );
  const unary = (
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): Promise<MessageShape<Output>> =>
    call(method, request, options).then(
      clientResponseMessage as (
        response: UnaryResponse,
      ) => MessageShape<Output>,
    );
  return Object.assign(unary, { raw });
}

function clientResponseMessage(response: UnaryResponse): Message {
  return response.message;
}

function clientUnaryResult(response: UnaryResponse): UnaryResult<Message> {
  return {
    message: response.message,
    header: response.header,
    trailer: response.trailer,
  };
}

/**
 * A streaming response with its headers; `trailer` is complete once
 * `messages` has been read to the end.
 * @public
 */
export interface StreamResult<Output> {
  readonly header: Headers;
  readonly trailer: Headers;
  readonly messages: AsyncIterable<Output>;
}

/**
 * A server-streaming method: iterate the call for its responses. Breaking
 * out of the loop cancels the call.
 * @public
 */
export interface ServerStreamingMethod<Input extends DescMessage, Output> {
  (
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): AsyncIterable<Output>;
  raw(
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): Promise<StreamResult<Output>>;
}

/**
 * A client-streaming method: send any iterable of requests (an array, or an
 * async generator), get one response.
 * @public
 */
export interface ClientStreamingMethod<Input extends DescMessage, Output> {
  (
    requests:
      | AsyncIterable<MessageInitShape<Input>>
      | Iterable<MessageInitShape<Input>>,
    options?: CallOptions,
  ): Promise<Output>;
  raw(
    requests:
      | AsyncIterable<MessageInitShape<Input>>
      | Iterable<MessageInitShape<Input>>,
    options?: CallOptions,
  ): Promise<UnaryResult<Output>>;
}

/**
 * A bidi-streaming method: requests are sent as the iterable yields them
 * while responses arrive (full duplex over HTTP/2; an array sends them all).
 * @public
 */
export interface BidiStreamingMethod<Input extends DescMessage, Output> {
  (
    requests:
      | AsyncIterable<MessageInitShape<Input>>
      | Iterable<MessageInitShape<Input>>,
    options?: CallOptions,
  ): AsyncIterable<Output>;
  raw(
    requests:
      | AsyncIterable<MessageInitShape<Input>>
      | Iterable<MessageInitShape<Input>>,
    options?: CallOptions,
  ): Promise<StreamResult<Output>>;
}

function clientStreamResult<Output>(
  response: StreamResponse,
): StreamResult<Output> {
  return {
    header: response.header,
    trailer: response.trailer,
    messages: response.message as AsyncIterable<Output>,
  };
}

// The call starts when the loop starts, as the caller would expect of an iterable.
async function* clientLazyMessages<Output>(
  start: () => Promise<StreamResponse>,
): AsyncGenerator<Output> {
  const response = await start();
  yield* response.message as AsyncIterable<Output>;
}

export function clientServerStreamingMethod<
  Input extends DescMessage,
  Output extends DescMessage,
>(
  call: StreamCaller,
  method: MethodInfo & { readonly input: Input; readonly output: Output },
): ServerStreamingMethod<Input, MessageShape<Output>> {
  const start = (request: MessageInitShape<Input>, options?: CallOptions) =>
    call(method, [request], options);
  return Object.assign(
    (request: MessageInitShape<Input>, options?: CallOptions) =>
      clientLazyMessages<MessageShape<Output>>(() => start(request, options)),
    {
      raw: async (request: MessageInitShape<Input>, options?: CallOptions) =>
        clientStreamResult<MessageShape<Output>>(await start(request, options)),
    },
  );
}

export function clientClientStreamingMethod<
  Input extends DescMessage,
  Output extends DescMessage,
>(
  call: StreamCaller,
  method: MethodInfo & { readonly input: Input; readonly output: Output },
): ClientStreamingMethod<Input, MessageShape<Output>> {
  const raw = async (
    requests:
      | AsyncIterable<MessageInitShape<Input>>
      | Iterable<MessageInitShape<Input>>,
    options?: CallOptions,
  ): Promise<UnaryResult<MessageShape<Output>>> => {
    const response = await call(method, requests, options);
    let message: MessageShape<Output> | undefined;
    for await (const m of response.message) {
      if (message !== undefined) {
        throw new ConnectError(
          "protocol error: more than one response message",
          Code.Unimplemented,
        );
      }
      message = m as MessageShape<Output>;
    }
    if (message === undefined) {
      throw new ConnectError(
        "protocol error: no response message",
        Code.Unimplemented,
      );
    }
    return { message, header: response.header, trailer: response.trailer };
  };
  return Object.assign(
    async (
      requests:
        | AsyncIterable<MessageInitShape<Input>>
        | Iterable<MessageInitShape<Input>>,
      options?: CallOptions,
    ) => (await raw(requests, options)).message,
    { raw },
  );
}

export function clientBidiStreamingMethod<
  Input extends DescMessage,
  Output extends DescMessage,
>(
  call: StreamCaller,
  method: MethodInfo & { readonly input: Input; readonly output: Output },
): BidiStreamingMethod<Input, MessageShape<Output>> {
  const start = (
    requests:
      | AsyncIterable<MessageInitShape<Input>>
      | Iterable<MessageInitShape<Input>>,
    options?: CallOptions,
  ) => call(method, requests, options);
  return Object.assign(
    (
      requests:
        | AsyncIterable<MessageInitShape<Input>>
        | Iterable<MessageInitShape<Input>>,
      options?: CallOptions,
    ) =>
      clientLazyMessages<MessageShape<Output>>(() => start(requests, options)),
    {
      raw: async (
        requests:
          | AsyncIterable<MessageInitShape<Input>>
          | Iterable<MessageInitShape<Input>>,
        options?: CallOptions,
      ) =>
        clientStreamResult<MessageShape<Output>>(
          await start(requests, options),
        ),
    },
  );
}
