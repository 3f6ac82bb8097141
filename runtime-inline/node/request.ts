import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest, ServerHttp2Stream } from "node:http2";
import { readBody } from "../core/body.ts";
import type { ServerRequest } from "../server/handler.ts";
import { nodeBody, nodeReadBody } from "./body.ts";
import type { NodeCallSignal } from "./call-signal.ts";

/** What a request's body is read from. */
export type NodeRequestBody =
  IncomingMessage | Http2ServerRequest | ServerHttp2Stream;

/**
 * A Node request as the protocol code sees it. A class, so that a call
 * makes no closures for it; its URL, headers, body and signal are made on
 * first use, which for most calls is never (or, for the body, read whole
 * through `readBody` rather than iterated).
 */
export class NodeServerRequest implements ServerRequest {
  readonly method: string;
  readonly path: string;
  readonly search: string;
  readonly httpVersion: string;
  /** What the body is read from. */
  readonly source: NodeRequestBody;
  /** The body as a body parser left it, when one read the stream before us. */
  readonly #parsed: AsyncIterable<Uint8Array> | undefined;
  readonly #headers: NodeIncomingHeaders;
  readonly #rawHeaders: readonly string[];
  /** Path and query. */
  readonly #target: string;
  readonly #encrypted: boolean;
  readonly #call: NodeCallSignal;
  #url: string | undefined = undefined;
  #all: Headers | undefined = undefined;

  constructor(
    source: NodeRequestBody,
    parsed: AsyncIterable<Uint8Array> | undefined,
    headers: NodeIncomingHeaders,
    rawHeaders: readonly string[],
    target: string,
    method: string,
    encrypted: boolean,
    httpVersion: string,
    call: NodeCallSignal,
  ) {
    const queryStart = target.indexOf("?");
    this.method = method;
    this.path = queryStart < 0 ? target : target.slice(0, queryStart);
    this.search = queryStart < 0 ? "" : target.slice(queryStart);
    this.httpVersion = httpVersion;
    this.source = source;
    this.#parsed = parsed;
    this.#headers = headers;
    this.#rawHeaders = rawHeaders;
    this.#target = target;
    this.#encrypted = encrypted;
    this.#call = call;
  }

  get url(): string {
    return (this.#url ??= `${this.#encrypted ? "https" : "http"}://${this.header("host") ?? "localhost"}${this.#target}`);
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.#parsed ?? nodeBody(this.source);
  }

  get signal(): AbortSignal {
    return this.#call.signal;
  }

  header(name: string): string | null {
    return nodeHeader(this.#headers, name);
  }

  headers(): Headers {
    return (this.#all ??= nodeRequestHeaders(this.#rawHeaders));
  }

  readBody(maxBytes: number): Promise<Uint8Array> {
    const parsed = this.#parsed;
    return parsed === undefined
      ? nodeReadBody(this.source, maxBytes)
      : readBody(parsed, maxBytes);
  }
}

/** Node's parsed request headers: lower-case names, HTTP/2 pseudo-headers included. */
export type NodeIncomingHeaders = Readonly<
  Record<string, string | string[] | undefined>
>;

// Node has parsed the headers already (node:http lazily, node:http2 before
// the stream event): reading a few of them costs a property lookup, where a
// `Headers` validates and copies every one.
function nodeHeader(headers: NodeIncomingHeaders, name: string): string | null {
  const value =
    headers[name] ?? (name === "host" ? headers[":authority"] : undefined);
  if (value === undefined) return null;
  return typeof value === "string" ? value : value.join(", ");
}

// rawHeaders keeps repeated headers apart; HTTP/2 pseudo-headers are not
// valid Headers names and are dropped, except that :authority stands in for Host.
function nodeRequestHeaders(rawHeaders: readonly string[]): Headers {
  const header = new Headers();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (name === ":authority" && !header.has("host"))
        header.set("host", value);
      continue;
    }
    header.append(name, value);
  }
  return header;
}

/** Drops Content-Encoding: a body parser has undone it. */
export function nodeWithoutContentEncoding(
  rawHeaders: readonly string[],
): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === "content-encoding") continue;
    kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}
