// An HttpClient over node:https for HTTP/1.1 over TLS: fetch cannot be given
// a CA or a client certificate, so the conformance client brings its own,
// written against the generated file's public HttpClient type.
import * as https from "node:https";
import type { HttpClient } from "./gen/connectrpc/conformance/v1/service.ConformanceService.ts";

export interface HttpsClientOptions {
  /** The server certificate (or its CA) to trust, in PEM. */
  readonly ca: string | Buffer;
  /** A client certificate and key, in PEM, for servers that require one. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export function createHttpsHttpClient(options: HttpsClientOptions): HttpClient {
  const agent = new https.Agent({ ...options, keepAlive: true });
  return (request) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      request.header.forEach((value, key) => {
        headers[key] = value;
      });
      const req = https.request(request.url, {
        method: request.method,
        headers,
        agent,
        signal: request.signal,
      });
      req.once("error", reject);
      req.once("response", (res) => {
        const header = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          header.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        }
        // HTTP/1.1 trailers (chunked encoding) are complete once the body has ended.
        const trailer = new Headers();
        res.once("end", () => {
          for (let i = 0; i + 1 < res.rawTrailers.length; i += 2) {
            trailer.append(res.rawTrailers[i]!, res.rawTrailers[i + 1]!);
          }
        });
        resolve({
          status: res.statusCode ?? 0,
          header,
          body: res,
          trailer,
          // The protocol code undoes Content-Encoding itself.
          contentDecoded: false,
        });
      });
      const body = request.body;
      if (body === undefined || body instanceof Uint8Array) {
        req.end(body);
        return;
      }
      // A streaming body is sent as it is produced (chunked), waiting on drain.
      void (async () => {
        try {
          for await (const chunk of body) {
            if (req.destroyed) return;
            if (!req.write(chunk)) {
              await new Promise<void>((go) => {
                req.once("drain", go);
                req.once("close", go);
              });
            }
          }
          req.end();
        } catch (e) {
          req.destroy(e instanceof Error ? e : new Error(String(e)));
        }
      })();
    });
}
