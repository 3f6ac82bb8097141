import { ConnectError, isConnectError } from "../core/errors.ts";
import type { ServerConfig } from "./config.ts";
import type { HandlerContext } from "./handler.ts";

/** The message sent instead of that of an error which is not a ConnectError. */
export const serverRedactedMessage = "internal error (details withheld)";

/**
 * What a call that failed after its implementation started sends: reports
 * the error to `onError` (which cannot break the call by throwing or
 * rejecting), and withholds the message of anything not a ConnectError
 * unless `redactErrors` is off.
 */
export function serverFail(
  reason: unknown,
  config: ServerConfig,
  context: HandlerContext,
): ConnectError {
  const known = isConnectError(reason);
  const redact = !known && config.redactErrors;
  const onError = config.onError;
  try {
    if (onError !== undefined) {
      const result: unknown = onError(reason, context);
      if (result instanceof Promise) result.catch(() => {});
    } else if (redact) {
      console.error(
        `${context.method.path}: ${serverRedactedMessage}:`,
        reason,
      );
    }
  } catch {
    // A logger that throws must not change what the client gets.
  }
  const error = ConnectError.from(reason);
  return redact
    ? new ConnectError(serverRedactedMessage, error.code, {
        metadata: error.metadata,
      })
    : error;
}
