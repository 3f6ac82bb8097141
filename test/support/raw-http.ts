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

/** One request over HTTP/1.1 (node:http) or HTTP/2 (node:http2, h2c). */
export async function rawRequest(
  version: "1.1" | "2",
  url: string,
  init: {
    readonly method?: string;
    readonly headers?: Record<string, string>;
    readonly body?: Uint8Array | string;
  },
): Promise<RawResponse> {
  const { method = "POST", headers = {}, body } = init;
  const target = new URL(url);
  if (version === "1.1") {
    return new Promise((resolve, reject) => {
      const req = http.request(
        target,
        { method, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              trailers: res.trailers,
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }
  const session = http2.connect(target.origin);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request({
        ":method": method,
        ":path": target.pathname + target.search,
        ...headers,
      });
      let status = 0;
      let responseHeaders: RawResponse["headers"] = {};
      let trailers: RawResponse["trailers"] = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () =>
        resolve({
          status,
          headers: responseHeaders,
          body: Buffer.concat(chunks),
          trailers,
        }),
      );
      stream.on("error", reject);
      stream.end(body);
    });
  } finally {
    session.close();
  }
}
