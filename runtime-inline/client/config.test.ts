import { describe, expect, it } from "vitest";
import {
  clientCallSignal,
  clientCallStart,
  clientSend,
  createClientConfig,
} from "./config.ts";
import { connectGetRequest } from "./connect.ts";
import { Code } from "../core/code.ts";
import { codecBinary, jsonCodec } from "../core/codec.ts";
import { compressionGzip } from "../node/compression.ts";
import { ConnectError } from "../core/errors.ts";
import {
  httpFieldsHeaders,
  httpSendFields,
  type HttpClient,
  type HttpFieldsClient,
  type HttpFieldsRequest,
  type HttpRequest,
  type HttpResponse,
} from "./http-client.ts";

const noHttp: HttpClient = () => Promise.reject(new Error("not used"));
const timeoutHeader = {
  name: "x-timeout",
  format: (ms: number) => `${ms}ms`,
  maxMs: 1000,
};

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe("createClientConfig", () => {
  it("drops one trailing slash of the base URL and applies the defaults", () => {
    const config = createClientConfig("http://a.test/api/", {}, noHttp, {});
    expect(config.baseUrl).toBe("http://a.test/api");
    expect(config.codec).toBe(codecBinary);
    expect(config.compressions).toEqual([]);
    expect(config.readMaxBytes).toBe(4 * 1024 * 1024);
    expect(config.compressMinBytes).toBe(1024);
    expect(config.get).toBeUndefined();
    expect(config.httpClient).toBe(noHttp);
  });

  it("prefers the options' compressions to the file's defaults", () => {
    const defaults = createClientConfig("", {}, noHttp, {
      compressions: [compressionGzip],
    });
    expect(defaults.compressions).toEqual([compressionGzip]);
    const none = createClientConfig("", { compressions: [] }, noHttp, {
      compressions: [compressionGzip],
    });
    expect(none.compressions).toEqual([]);
  });

  it("uses GET only when asked and the file has it", () => {
    expect(
      createClientConfig("", { useHttpGet: true }, noHttp, {
        get: connectGetRequest,
      }).get,
    ).toBe(connectGetRequest);
    expect(
      createClientConfig("", {}, noHttp, { get: connectGetRequest }).get,
    ).toBeUndefined();
    expect(
      createClientConfig("", { useHttpGet: true }, noHttp, {}).get,
    ).toBeUndefined();
  });

  it("speaks binary unless given a codec, and the codec given otherwise", () => {
    expect(createClientConfig("", {}, noHttp, {}).codec).toBe(codecBinary);
    const json = jsonCodec({ alwaysEmitImplicit: true });
    expect(createClientConfig("", { codec: json }, noHttp, {}).codec).toBe(
      json,
    );
  });
});

describe("clientCallStart", () => {
  const config = createClientConfig(
    "",
    {
      headers: { "x-client": "c", "x-both": "client" },
      timeoutMs: 500,
      compressions: [compressionGzip],
    },
    noHttp,
    {},
  );

  it("merges the headers, the call's winning, and sends the client's timeout", () => {
    const [header, compression, timeoutMs] = clientCallStart(
      config,
      { headers: { "x-both": "call" } },
      timeoutHeader,
    );
    expect(timeoutMs).toBe(500);
    expect(header).toEqual({
      "x-client": "c",
      "x-both": "call",
      "x-timeout": "500ms",
    });
    expect(compression).toBeUndefined();
  });

  it("merges the call's headers in any form the Headers constructor takes, each name the call sets replacing the client's values", () => {
    const multi = new Headers([
      ["x-both", "one"],
      ["x-both", "two"],
    ]);
    for (const headers of [
      multi,
      [
        ["X-Both", "one"],
        ["x-both", "two"],
      ],
      new Map([["x-both", "one, two"]]),
      { "X-Both": "one", "x-both": "two" },
    ] as HeadersInit[]) {
      const [header] = clientCallStart(config, { headers }, timeoutHeader);
      expect(header).toEqual({
        "x-both": "one, two",
        "x-client": "c",
        "x-timeout": "500ms",
      });
    }
  });

  it("refuses call headers the Headers constructor refuses", () => {
    for (const headers of [
      [["x-a"]],
      [["x-a", "1", "2"]],
      { "bad name": "1" },
      { "x-a": "bad\nvalue" },
    ] as unknown as HeadersInit[]) {
      expect(() => clientCallStart(config, { headers }, timeoutHeader)).toThrow(
        TypeError,
      );
    }
  });

  it("caps a timeout at what the header carries", () => {
    const [header, , timeoutMs] = clientCallStart(
      config,
      { timeoutMs: Infinity },
      timeoutHeader,
    );
    expect(header["x-timeout"]).toBe("1000ms");
    expect(timeoutMs).toBe(1000);
  });

  it("refuses a timeout that is no number of milliseconds", () => {
    for (const timeoutMs of [-1, NaN, "5" as unknown as number]) {
      const error = thrown(() =>
        clientCallStart(config, { timeoutMs }, timeoutHeader),
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    }
  });

  it("finds the send compression by name, case-insensitive, and refuses one it lacks", () => {
    const [, gzip] = clientCallStart(
      config,
      { sendCompression: "GZIP" },
      timeoutHeader,
    );
    expect(gzip).toBe(compressionGzip);
    const [, identity] = clientCallStart(
      config,
      { sendCompression: "identity" },
      timeoutHeader,
    );
    expect(identity).toBeUndefined();
    const error = thrown(() =>
      clientCallStart(config, { sendCompression: "br" }, timeoutHeader),
    );
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toMatch(/available are gzip/);
  });

  it("leaves out the call's headers when it has none", () => {
    const [header] = clientCallStart(config, {}, timeoutHeader);
    expect(Object.keys(header).sort()).toEqual([
      "x-both",
      "x-client",
      "x-timeout",
    ]);
  });

  it("gives each call a record of its own, a fresh one without any headers", () => {
    const bare = createClientConfig("", {}, noHttp, {});
    const [first] = clientCallStart(bare, {}, timeoutHeader);
    const [second] = clientCallStart(bare, {}, timeoutHeader);
    expect(first).toEqual({});
    expect(first).not.toBe(second);
    const [one] = clientCallStart(config, {}, timeoutHeader);
    const [two] = clientCallStart(config, {}, timeoutHeader);
    expect(one).not.toBe(two);
  });

  it("keeps a header named __proto__ as a header, not as the record's prototype", () => {
    const [header] = clientCallStart(
      config,
      { headers: [["__proto__", "x"]] },
      timeoutHeader,
    );
    expect(Object.getPrototypeOf(header)).toBe(Object.prototype);
    expect(Object.keys(header)).toContain("__proto__");
    expect(httpFieldsHeaders(header).get("__proto__")).toBe("x");
  });
});

describe("clientCallSignal", () => {
  it("aborts the call's controller when the caller's signal aborts, and not after cleanup", () => {
    const caller = new AbortController();
    const [controller, cleanup] = clientCallSignal(60_000, {
      signal: caller.signal,
    });
    caller.abort();
    expect(controller.signal.aborted).toBe(true);
    cleanup();

    const later = new AbortController();
    const [other, cleanupOther] = clientCallSignal(undefined, {
      signal: later.signal,
    });
    cleanupOther();
    later.abort();
    expect(other.signal.aborted).toBe(false);
  });

  it("aborts with DeadlineExceeded when the timeout passes", async () => {
    const [controller, cleanup] = clientCallSignal(1, {});
    await new Promise((resolve) =>
      controller.signal.addEventListener("abort", resolve),
    );
    cleanup();
    expect((controller.signal.reason as ConnectError).code).toBe(
      Code.DeadlineExceeded,
    );
  });
});

describe("clientSend", () => {
  const request = (signal: AbortSignal): HttpFieldsRequest => ({
    url: "http://a.test/",
    method: "POST",
    fields: { "x-a": "1" },
    body: new Uint8Array(),
    signal,
  });

  it("gives an HttpClient without the fields entry point its Headers", async () => {
    let seen: HttpRequest | undefined;
    const error = await clientSend((r) => {
      seen = r;
      return Promise.reject(new TypeError("fetch failed"));
    }, request(new AbortController().signal)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(seen!.header).toBeInstanceOf(Headers);
    expect(seen!.header.get("x-a")).toBe("1");
  });

  it("gives an HttpClient with the fields entry point the record as it is", async () => {
    const sent = request(new AbortController().signal);
    let seen: HttpFieldsRequest | undefined;
    const client = (() => {
      throw new Error("the Headers entry point was used");
    }) as unknown as HttpFieldsClient;
    client[httpSendFields] = (r) => {
      seen = r;
      return Promise.reject(new TypeError("fetch failed"));
    };
    await clientSend(client, sent).catch(() => {});
    expect(seen!.fields).toBe(sent.fields);
  });

  it("turns a transport failure into unavailable", async () => {
    const error = await clientSend(
      () => Promise.reject(new TypeError("fetch failed")),
      request(new AbortController().signal),
    ).catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
  });

  it("rejects, never throws, when the transport throws rather than rejecting", async () => {
    const sent = clientSend(() => {
      throw new TypeError("no network");
    }, request(new AbortController().signal));
    expect(sent).toBeInstanceOf(Promise);
    const error = await sent.catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toBe("no network");
  });

  it("answers the transport's own response as it is", async () => {
    const response: HttpResponse = {
      status: 200,
      header: new Headers(),
      trailer: new Headers(),
      body: (async function* () {})(),
      contentDecoded: false,
    };
    await expect(
      clientSend(
        () => Promise.resolve(response),
        request(new AbortController().signal),
      ),
    ).resolves.toBe(response);
  });

  it("turns a failure after the signal fired into the signal's reason, canceled by default", async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await clientSend(
      () => Promise.reject(new TypeError("fetch failed")),
      request(controller.signal),
    ).catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.Canceled);
  });
});
