import { create, isMessage, type Message } from "@bufbuild/protobuf";
import type { ConnectError } from "../core/errors.ts";
import { deadlineStart } from "../core/deadline.ts";
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
 * the error).
 */
export type UnaryResult =
  | {
      readonly ok: true;
      readonly message: Message;
      readonly header: Headers;
      readonly trailer: Headers;
    }
  | {
      readonly ok: false;
      readonly error: ConnectError;
      readonly header: Headers;
      readonly trailer: Headers;
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
  const run = async (message: Message): Promise<UnaryResponse> => {
    const result = await handler.unary(message, context);
    return {
      stream: false,
      method,
      header: context.responseHeaders,
      trailer: context.responseTrailers,
      message: isMessage(result, method.output)
        ? result
        : create(method.output, result),
    };
  };
  try {
    const interceptors = config.interceptors;
    // Without interceptors, no request object for them to see.
    const call =
      interceptors === undefined || interceptors.length === 0
        ? run(input)
        : applyInterceptors<UnaryRequest, UnaryResponse>(
            (req) => run(req.message),
            interceptors,
          )(serverInterceptorRequest(false, request, context, input));
    // Without a timeout, the race would only answer a client that has gone
    // away, to whom nothing is sent: not worth a promise and a listener.
    const response =
      deadline === undefined ? await call : await deadline.race(call);
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
      header: context.responseHeaders,
      trailer: context.responseTrailers,
    };
  } finally {
    deadline?.cleanup();
  }
}
