import * as https from "node:https";
import {
  brotliDecompressSync,
  gunzipSync,
  zstdDecompressSync,
} from "node:zlib";
import type { HttpClient } from "../gen/unary/v1/unary.GreetService.ts";

/**
 * An HttpClient over node:https (HTTP/1.1 over TLS) trusting `ca`: the kind
 * of client a user writes against the public HttpClient type when fetch
 * cannot be given a CA. It leaves Content-Encoding to the protocol code.
 */
export function createHttpsHttpClient(ca: string): HttpClient {
  const agent = new https.Agent({ ca, keepAlive: false });
  return (request) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      request.header.forEach((value, key) => {
        headers[key] = value;
      });
      const req = https.request(
        request.url,
        { method: request.method, headers, agent, signal: request.signal },
        (res) => {
          const header = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            header.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          }
          resolve({
            status: res.statusCode ?? 0,
            header,
            body: res,
            trailer: new Headers(),
            contentDecoded: false,
          });
        },
      );
      req.once("error", reject);
      req.end(request.body);
    });
}

/**
 * A fetch function that hands each request straight to a fetch handler, with
 * no network in between. Like the platform's fetch it undoes Content-Encoding
 * (keeping the header), since `createFetchHttpClient` relies on that.
 */
export function inProcessFetch(
  handler: (request: Request) => Promise<Response>,
): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    // fetch never sends a request whose signal is already aborted.
    request.signal.throwIfAborted();
    // Nor waits for a response once its signal aborts.
    const response = await Promise.race([
      handler(request),
      new Promise<never>((_, reject) =>
        request.signal.addEventListener(
          "abort",
          () => reject(request.signal.reason),
          { once: true },
        ),
      ),
    ]);
    const encoding = response.headers.get("content-encoding");
    if (encoding === null || response.body === null) return response;
    const raw = new Uint8Array(await response.arrayBuffer());
    let decoded: Uint8Array;
    switch (encoding) {
      case "gzip":
        decoded = gunzipSync(raw);
        break;
      case "br":
        decoded = brotliDecompressSync(raw);
        break;
      case "zstd":
        decoded = zstdDecompressSync(raw);
        break;
      default:
        throw new TypeError(
          `in-process fetch cannot decode content-encoding "${encoding}"`,
        );
    }
    return new Response(decoded as Uint8Array<ArrayBuffer>, {
      status: response.status,
      headers: response.headers,
    });
  };
}
