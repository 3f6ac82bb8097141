import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { deadlineForRequest } from "../core/deadline.ts";
import { applyInterceptors, type UnaryNext } from "../core/interceptors.ts";
import type { ServerConfig } from "./config.ts";
import { ServerCallContext, serverInterceptorRequest } from "./context.ts";
import { serverFail } from "./fail.ts";
import type {
  HandlerContext,
  ServerRequest,
  UnaryMethodHandler,
} from "./handler.ts";

/**
 * Runs the interceptors and the implementation of a unary call of any
 * protocol, with a signal that aborts on client cancellation or at the
 * deadline; the deadline answers the call at once even if the
 * implementation ignores its signal. Failures come out as the ConnectError
 * to send (serverFail).
 */
export async function serverRunUnary(
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  protocol: HandlerContext["protocol"],
  input: Message,
  timeoutMs: number | undefined,
  responseHeaders: Headers,
  responseTrailers: Headers,
) {
  const method = handler.method;
  // A client that goes away surfaces as the request's signal aborting.
  const deadline = deadlineForRequest(timeoutMs, request.signal);
  const signal = deadline.signal;
  const context = new ServerCallContext(
    method,
    protocol,
    request,
    responseHeaders,
    responseTrailers,
    signal,
    deadline.remainingMs,
    config.contextValues,
  );
  const next: UnaryNext = async (req) => {
    const result = await handler.unary(req.message, context);
    const message = isMessage(result, method.output)
      ? result
      : create(method.output, result);
    return {
      stream: false,
      method,
      header: responseHeaders,
      trailer: responseTrailers,
      message,
    };
  };
  try {
    const call = applyInterceptors(
      next,
      config.interceptors,
    )(serverInterceptorRequest(false, request, context, input));
    // Without a timeout, the race would only answer a client that has gone
    // away, to whom nothing is sent: not worth a promise and a listener.
    return timeoutMs === undefined ? await call : await deadline.race(call);
  } catch (e) {
    throw serverFail(e, config, context);
  } finally {
    deadline.cleanup();
  }
}
