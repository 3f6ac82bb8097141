// The pieces of the tests in a real browser: finding and launching Chromium,
// building the page (the Eliza client generated with `platform=web`, bundled
// with page.ts by esbuild), serving it, and recording what reaches a server.

import {
  accessSync,
  constants,
  mkdtempSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { writeFileSync } from "node:fs";
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium, type Browser } from "playwright-core";
import { bufGenerate, repoRoot } from "../support/generate.ts";
import type { NodeListener } from "../support/servers.ts";

/**
 * The Chromium to drive: $CHROMIUM, else `chromium` on PATH (Debian's
 * package, which .ci/run installs). Missing, it is an error, never a reason
 * to skip: CI must run these tests.
 */
export function chromiumExecutable(): string {
  const fromEnv = process.env["CHROMIUM"];
  const candidates =
    fromEnv !== undefined && fromEnv !== ""
      ? [fromEnv]
      : (process.env["PATH"] ?? "")
          .split(delimiter)
          .filter((dir) => dir !== "")
          .map((dir) => join(dir, "chromium"));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not this one.
    }
  }
  throw new Error(
    fromEnv !== undefined && fromEnv !== ""
      ? `CHROMIUM is set to ${fromEnv}, which is not an executable`
      : 'no "chromium" on PATH: the browser tests need Chromium; install it ' +
          "(Debian: apt-get install chromium) or set CHROMIUM to its executable",
  );
}

/** Launches headless Chromium (playwright-core drives it; it downloads no browser). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    args: [
      // Running as root (CI, containers) needs it.
      "--no-sandbox",
      "--disable-gpu",
      // The tests speak HTTP/1.1 and HTTP/2 over TCP to 127.0.0.1 only; the
      // rest keeps Chromium from reaching out to the network on its own,
      // which a machine without network answers by refusing connections.
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The page: its HTML, and its script bundled for the browser. */
export interface PageFiles {
  readonly html: string;
  readonly script: string;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Generates the fixtures with `platform=web` into a temporary directory and
 * bundles page.ts with them: page.ts imports test/gen's Node files (for the
 * type checker), which the bundle replaces with the web ones.
 */
export async function buildPage(): Promise<PageFiles> {
  const work = mkdtempSync(join(tmpdir(), "cs-browser-"));
  try {
    bufGenerate(work, "import_extension=ts,platform=web");
    writeFileSync(
      join(work, "package.json"),
      JSON.stringify({ type: "module" }),
    );
    symlinkSync(join(repoRoot, "node_modules"), join(work, "node_modules"));
    const webFiles: esbuild.Plugin = {
      name: "platform-web",
      setup(build) {
        build.onResolve({ filter: /\/gen\/eliza\/v1\/[^/]+\.ts$/ }, (args) => ({
          path: join(work, "eliza/v1", basename(args.path)),
        }));
      },
    };
    const result = await esbuild.build({
      entryPoints: [join(here, "page.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "chrome120",
      logLevel: "silent",
      plugins: [webFiles],
    });
    const script = result.outputFiles[0]?.text;
    if (script === undefined) throw new Error("esbuild wrote no bundle");
    return {
      html: '<!doctype html>\n<meta charset="utf-8">\n<title>connect-standalone</title>\n<script type="module" src="/page.js"></script>\n',
      script,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Serves the page at `/` and `/page.js`, and passes every other request to `next`. */
export function servePage(page: PageFiles, next: NodeListener): NodeListener {
  return (request, response) => {
    const path = request.url;
    if (request.method === "GET" && (path === "/" || path === "/page.js")) {
      const [type, body] =
        path === "/"
          ? ["text/html; charset=utf-8", page.html]
          : ["text/javascript; charset=utf-8", page.script];
      // Both response kinds have writeHead; TypeScript cannot call a union of them.
      (response as http.ServerResponse)
        .writeHead(200, {
          "content-type": type,
          "content-length": Buffer.byteLength(body),
        })
        .end(body);
      return;
    }
    next(request, response);
  };
}

/** A request that reached a server, with the head of its response. */
export interface Exchange {
  readonly method: string;
  readonly path: string;
  /** "1.1" or "2.0". */
  readonly httpVersion: string;
  readonly requestHeaders: http.IncomingHttpHeaders;
  /** Set once the response head is written. */
  status?: number;
  responseHeaders?: Record<string, string>;
}

/**
 * Wraps a listener so that each request and the head of its response are
 * kept in `exchanges`: a CORS preflight, and the CORS headers of a response,
 * are the browser's business and invisible to the page's script, so the
 * server is where to see them.
 */
export function recordExchanges(next: NodeListener): {
  listener: NodeListener;
  exchanges: Exchange[];
} {
  const exchanges: Exchange[] = [];
  const listener: NodeListener = (request, response) => {
    const exchange: Exchange = {
      method: request.method ?? "",
      path: request.url ?? "",
      httpVersion: request.httpVersion,
      requestHeaders: request.headers,
    };
    exchanges.push(exchange);
    const seen = (status: unknown, headers: unknown) => {
      exchange.status = Number(status);
      exchange.responseHeaders = headerRecord(headers);
    };
    // The generated handler writes an HTTP/2 response to the stream itself
    // (respond), an HTTP/1.1 one with writeHead: both are watched.
    if ("stream" in response) {
      const stream: http2.ServerHttp2Stream = response.stream;
      const respond = stream.respond.bind(stream);
      stream.respond = (headers, options) => {
        seen(headerRecord(headers)[":status"], headers);
        respond(headers, options);
      };
    } else {
      const writeHead = response.writeHead.bind(response) as (
        ...args: unknown[]
      ) => http.ServerResponse;
      // Replaced with a looser signature: writeHead is overloaded.
      (response as { writeHead: (...args: unknown[]) => unknown }).writeHead = (
        ...args: unknown[]
      ) => {
        const headers = args.find((arg) => typeof arg === "object");
        seen(args[0], { ...response.getHeaders(), ...headerRecord(headers) });
        return writeHead(...args);
      };
    }
    next(request, response);
  };
  return { listener, exchanges };
}

/** Headers given as an object or a flat [name, value, ...] array, names in lower case. */
function headerRecord(headers: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      record[String(headers[i]).toLowerCase()] = String(headers[i + 1]);
    }
  } else if (typeof headers === "object" && headers !== null) {
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) record[name.toLowerCase()] = String(value);
    }
  }
  return record;
}
