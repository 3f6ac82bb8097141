import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, codeToString } from "./code.ts";

/**
 * An error detail as it travels: the fully-qualified message type name and the
 * binary message (the fields of a `google.protobuf.Any`).
 * @public
 */
export interface ErrorDetail {
  readonly type: string;
  readonly value: Uint8Array;
  /** The detail's JSON form, when a peer sent one for debugging. */
  readonly debug?: unknown;
}

/**
 * A detail given as a message schema and its fields; it is serialized when the
 * error is created.
 * @public
 */
export interface ErrorDetailInit<Desc extends DescMessage = DescMessage> {
  readonly desc: Desc;
  readonly value: MessageInitShape<Desc>;
}

/** @public */
export interface ConnectErrorInit {
  /** Headers and trailers to send with the error, or that came with it. */
  readonly metadata?: HeadersInit;
  readonly details?: readonly (ErrorDetail | ErrorDetailInit)[];
  readonly cause?: unknown;
}

// Symbol.for makes the brand global to the process: every generated file
// recognises the ConnectError class of every other generated file.
const connectErrorBrand = Symbol.for("connect-standalone/ConnectError");

/**
 * The error of a failed RPC, on either side: a code, a message, metadata
 * (headers and trailers) and details.
 *
 * `instanceof ConnectError` is true for errors created by any generated file,
 * and for errors of `@connectrpc/connect`, which have the same shape.
 * @public
 */
export class ConnectError extends Error {
  readonly code: Code;
  /** The message without the `[code]` prefix. */
  readonly rawMessage: string;
  readonly metadata: Headers;
  readonly details: ErrorDetail[];
  override readonly cause: unknown;
  override name = "ConnectError";

  constructor(
    message: string,
    code: Code = Code.Unknown,
    init: ConnectErrorInit = {},
  ) {
    super(formatErrorMessage(message, code));
    Object.setPrototypeOf(this, new.target.prototype);
    Object.defineProperty(this, connectErrorBrand, { value: true });
    this.code = code;
    this.rawMessage = message;
    this.metadata = new Headers(init.metadata);
    this.details = (init.details ?? []).map(packErrorDetail);
    this.cause = init.cause;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isConnectError(value);
  }

  /**
   * Turns anything thrown into a ConnectError: ConnectErrors (of any file or
   * of `@connectrpc/connect`) keep their code; an abort becomes `canceled`;
   * anything else becomes `code` with the original as `cause`.
   */
  static from(reason: unknown, code: Code = Code.Unknown): ConnectError {
    if (isConnectError(reason)) {
      return reason;
    }
    if (!(reason instanceof Error)) {
      return new ConnectError(String(reason), code, { cause: reason });
    }
    return new ConnectError(
      reason.message,
      reason.name === "AbortError"
        ? Code.Canceled
        : reason.name === "TimeoutError"
          ? Code.DeadlineExceeded
          : code,
      { cause: reason },
    );
  }

  /** Decodes the details of the given type; others are skipped. */
  findDetails<Desc extends DescMessage>(desc: Desc): MessageShape<Desc>[] {
    return this.details
      .filter((detail) => detail.type === desc.typeName)
      .map((detail) => fromBinary(desc, detail.value));
  }
}

/**
 * True for a ConnectError from any generated file, and for an error of
 * `@connectrpc/connect` (recognised by its shape, as that library does).
 * @public
 */
export function isConnectError(value: unknown): value is ConnectError {
  if (!(value instanceof Error)) {
    return false;
  }
  if (connectErrorBrand in value) {
    return true;
  }
  const shape = value as unknown as Record<string, unknown>;
  return (
    value.name === "ConnectError" &&
    typeof shape["code"] === "number" &&
    shape["metadata"] instanceof Headers &&
    Array.isArray(shape["details"]) &&
    typeof shape["rawMessage"] === "string"
  );
}

function formatErrorMessage(message: string, code: Code): string {
  return message.length > 0
    ? `[${codeToString(code)}] ${message}`
    : `[${codeToString(code)}]`;
}

function packErrorDetail(detail: ErrorDetail | ErrorDetailInit): ErrorDetail {
  if ("desc" in detail) {
    return {
      type: detail.desc.typeName,
      value: toBinary(detail.desc, create(detail.desc, detail.value)),
    };
  }
  return detail;
}
