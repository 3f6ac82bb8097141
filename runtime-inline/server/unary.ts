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
 * implementation ignores its signal. Never rejects: a failure comes out as
 * the ConnectError to send (serverFail).
 */
export async function serverRunUnary(
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  protocol: HandlerContext["protocol"],
  input: Message,
  timeoutMs: number | undefined,
): Promise<UnaryResult> {
  const method = handler.method;
  // Without a timeout the call's signal is the request's, read only if the
  // implementation or an interceptor asks for it: most never do, and the
  // Node adapters make it on first use.
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
      // No request or response objects for interceptors to see, and the
      // response headers only if the implementation made them. Its own
      // promise (or value) is awaited: an async wrapper around it would add
      // a promise and its microtasks to every call.
      const result = await serverRace(deadline, handler.unary(input, context));
      return {
        ok: true,
        message: serverOutputMessage(method.output, result),
        header: context.responseHeadersIfAny(),
        trailer: context.responseTrailersIfAny(),
      };
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
    return {
      ok: false,
      error: serverFail(e, config, context),
      header: context.responseHeadersIfAny(),
      trailer: context.responseTrailersIfAny(),
    };
  } finally {
    deadline?.cleanup();
  }
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
