/**
 * One HTTP exchange as the client protocol code needs it; implemented over
 * fetch and over node:http2, or by the user for anything else.
 * @public
 */
export interface HttpRequest {
  readonly url: string;
  readonly method: "GET" | "POST";
  readonly header: Headers;
  /** A whole body, or chunks sent as they come (streaming calls). */
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | undefined;
  readonly signal: AbortSignal;
}

/** @public */
export interface HttpResponse {
  readonly status: number;
  readonly header: Headers;
  readonly body: AsyncIterable<Uint8Array>;
  /** HTTP trailers; complete once the body has been read to the end. */
  readonly trailer: Headers;
  /**
   * True when the HTTP layer already undid `Content-Encoding` (fetch does),
   * so the body must not be decompressed again.
   */
  readonly contentDecoded: boolean;
}

/** @public */
export type HttpClient = (request: HttpRequest) => Promise<HttpResponse>;
