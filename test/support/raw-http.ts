// Raw HTTP requests that show exactly what a response carried (status,
// headers, body, HTTP/2 trailers) over HTTP/1.1 or HTTP/2, whatever the
// protocol, and the 5-byte envelope of gRPC, gRPC-Web and Connect streams.
import * as http from "node:http";
import * as http2 from "node:http2";

export function envelopeBytes(
  payload: Uint8Array,
  flags = 0,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, 5);
  return out;
}

export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated headers as arrays. */
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** HTTP/2 trailers (an empty object if none came). */
  readonly trailers: Record<string, string | string[] | undefined>;
}

export interface RawRequestInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /**
   * A list is sent as separate writes (without a content-length header,
   * HTTP/1.1 then uses chunked encoding); no body ends the request at once.
   */
  readonly body?: Uint8Array | string | readonly Uint8Array[];
  /** HTTP/2: a session to open the stream on (left open); else one of its own. */
  readonly session?: http2.ClientHttp2Session;
  /**
   * A server may answer before it has read the whole body, then close the
   * connection (HTTP/1.1) or reset the stream (HTTP/2). Set, that still
   * gives the response, with the part of the body that came: an HTTP/1.1
   * write that fails with EPIPE or ECONNRESET is ignored, and an HTTP/2
   * stream or session error after the response. Else either fails the
   * request.
   */
  readonly resetAfterResponseOk?: boolean;
}

/** One request over HTTP/1.1 (node:http) or HTTP/2 (node:http2, h2c). */
export async function rawRequest(
  version: "1.1" | "2",
  url: string,
  init: RawRequestInit,
): Promise<RawResponse> {
  const { method = "POST", headers = {}, body } = init;
  const chunks: readonly (Uint8Array | string)[] =
    body === undefined
      ? []
      : typeof body === "string" || body instanceof Uint8Array
        ? [body]
        : body;
  const target = new URL(url);
  if (version === "1.1") {
    return new Promise((resolve, reject) => {
      const req = http.request(
        target,
        { method, headers, agent: false },
        (res) => {
          const received: Buffer[] = [];
          res.on("data", (chunk: Buffer) => received.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(received),
              trailers: res.trailers,
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", (e: NodeJS.ErrnoException) => {
        if (
          init.resetAfterResponseOk !== true ||
          (e.code !== "EPIPE" && e.code !== "ECONNRESET")
        ) {
          reject(e);
        }
      });
      for (const chunk of chunks) req.write(chunk);
      req.end();
    });
  }
  const session = init.session ?? http2.connect(target.origin);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      let failure: unknown;
      // Either error closes the stream: "close" decides.
      const onError = (e: unknown) => (failure ??= e);
      session.on("error", onError);
      const stream = session.request(
        {
          ":method": method,
          ":path": target.pathname + target.search,
          ...headers,
        },
        { endStream: body === undefined },
      );
      let status = 0;
      let responseHeaders: RawResponse["headers"] | undefined;
      let trailers: RawResponse["trailers"] = {};
      const received: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (chunk: Buffer) => received.push(chunk));
      stream.on("error", onError);
      stream.on("close", () => {
        session.off("error", onError);
        if (
          responseHeaders === undefined ||
          (failure !== undefined && init.resetAfterResponseOk !== true)
        ) {
          reject(
            failure ??
              new Error(
                `stream closed without a response (code ${stream.rstCode})`,
              ),
          );
          return;
        }
        resolve({
          status,
          headers: responseHeaders,
          body: Buffer.concat(received),
          trailers,
        });
      });
      if (body !== undefined) {
        for (const chunk of chunks) stream.write(chunk);
        stream.end();
      }
    });
  } finally {
    if (init.session === undefined) session.close();
  }
}
