import {
  create,
  isMessage,
  type DescMessage,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import type { ConnectError } from "../core/errors.ts";
import { deadlineStart, type Deadline } from "../core/deadline.ts";
import {
  applyInterceptors,
  type UnaryRequest,
  type UnaryResponse,
} from "../core/interceptors.ts";
import type { ServerConfig } from "./config.ts";
import { ServerCallContext, serverInterceptorRequest } from "./context.ts";
import { serverFail } from "./fail.ts";
import type {
  HandlerContext,
  ServerRequest,
  UnaryImplementation,
  UnaryMethodHandler,
} from "./handler.ts";

/**
 * A unary call once its implementation has answered or failed, with the
 * response headers and trailers it set (on failure too: they go out with
 * the error); undefined when it never touched them, as most do not.
 */
export type UnaryResult =
  | {
      readonly ok: true;
      readonly message: Message;
      readonly header: Headers | undefined;
      readonly trailer: Headers | undefined;
    }
  | {
      readonly ok: false;
      readonly error: ConnectError;
      readonly header: Headers | undefined;
      readonly trailer: Headers | undefined;
    };

/**
 * Runs the interceptors and the implementation of a unary call of any
 * protocol, with a signal that aborts on client cancellation or at the
 * deadline; the deadline answers the call at once even if the
 * implementation ignores its signal. Never rejects or throws: a failure
 * comes out as the ConnectError to send (serverFail). Callers `await` the
 * answer, which is a promise only when the call has something to wait for.
 */
export function serverRunUnary(
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  protocol: HandlerContext["protocol"],
  input: Message,
  timeoutMs: number | undefined,
): UnaryResult | Promise<UnaryResult> {
  const interceptors = config.interceptors;
  if (
    timeoutMs !== undefined ||
    (interceptors !== undefined && interceptors.length > 0)
  ) {
    return serverRunUnaryFull(
      handler,
      request,
      config,
      protocol,
      input,
      timeoutMs,
    );
  }
  // Most calls: no deadline to race and no interceptors, so no async
  // function around the implementation (its frame and promise were about
  // 800 of a small h2c call's 13.4 KB allocated), and no request or response
  // objects for interceptors. The call's signal is the request's, made only
  // if the implementation reads it.
  const context = new ServerCallContext(
    handler.method,
    protocol,
    request,
    undefined,
    config.contextValues,
  );
  let answer: ReturnType<UnaryImplementation>;
  try {
    answer = handler.unary(input, context);
  } catch (e) {
    return serverUnaryFailed(e, config, context);
  }
  if (!serverIsThenable(answer)) {
    return serverUnarySettle(answer, config, context);
  }
  return Promise.resolve(answer).then(
    (message) => serverUnarySettle(message, config, context),
    (e: unknown) => serverUnaryFailed(e, config, context),
  );
}

// The answer as a message, or the failure to send when it is no valid one.
function serverUnarySettle(
  answer: MessageInitShape<DescMessage>,
  config: ServerConfig,
  context: ServerCallContext,
): UnaryResult {
  try {
    return serverUnaryAnswered(answer, context);
  } catch (e) {
    return serverUnaryFailed(e, config, context);
  }
}

/** serverRunUnary with a deadline or interceptors. */
async function serverRunUnaryFull(
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  protocol: HandlerContext["protocol"],
  input: Message,
  timeoutMs: number | undefined,
): Promise<UnaryResult> {
  const method = handler.method;
  const deadline =
    timeoutMs === undefined
      ? undefined
      : deadlineStart(timeoutMs, request.signal);
  const context = new ServerCallContext(
    method,
    protocol,
    request,
    deadline,
    config.contextValues,
  );
  try {
    const interceptors = config.interceptors;
    if (interceptors === undefined || interceptors.length === 0) {
      return serverUnaryAnswered(
        await serverRace(deadline, handler.unary(input, context)),
        context,
      );
    }
    const response = await serverRace(
      deadline,
      applyInterceptors<UnaryRequest, UnaryResponse>(
        async (req) => ({
          stream: false,
          method,
          message: serverOutputMessage(
            method.output,
            await handler.unary(req.message, context),
          ),
          header: context.responseHeaders,
          trailer: context.responseTrailers,
        }),
        interceptors,
      )(serverInterceptorRequest(false, request, context, input)),
    );
    return {
      ok: true,
      message: response.message,
      header: response.header,
      trailer: response.trailer,
    };
  } catch (e) {
    return serverUnaryFailed(e, config, context);
  } finally {
    deadline?.cleanup();
  }
}

// Implementations may return any thenable, as `await` accepts; a message
// (init shape) is never one: protobuf-es fields are not functions.
function serverIsThenable(
  value: unknown,
): value is PromiseLike<MessageInitShape<DescMessage>> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

function serverUnaryAnswered(
  answer: MessageInitShape<DescMessage>,
  context: ServerCallContext,
): UnaryResult {
  return {
    ok: true,
    message: serverOutputMessage(context.method.output, answer),
    header: context.responseHeadersIfAny(),
    trailer: context.responseTrailersIfAny(),
  };
}

function serverUnaryFailed(
  error: unknown,
  config: ServerConfig,
  context: ServerCallContext,
): UnaryResult {
  return {
    ok: false,
    error: serverFail(error, config, context),
    header: context.responseHeadersIfAny(),
    trailer: context.responseTrailersIfAny(),
  };
}

/**
 * A call's result raced with its deadline, if it has one. Without a
 * timeout the race would only answer a client that has gone away, to whom
 * nothing is sent: not worth a promise and a listener.
 */
function serverRace<T>(
  deadline: Deadline | undefined,
  call: T | Promise<T>,
): T | Promise<T> {
  return deadline === undefined ? call : deadline.race(Promise.resolve(call));
}

/** The implementation's answer, as a message (it may return an init shape). */
function serverOutputMessage(
  output: DescMessage,
  result: MessageInitShape<DescMessage>,
): Message {
  return isMessage(result, output) ? result : create(output, result);
}
