// What the page script (page.ts, bundled for the browser) and the test
// (browser.test.ts, in Node) exchange through playwright's evaluate: plain
// JSON-able values only, since they cross into the browser and back.

/** How the page's client talks: Connect binary / JSON / GET, or gRPC-Web (binary). */
export type Transport =
  "connect-binary" | "connect-json" | "connect-get" | "grpc-web";

export type ElizaMethod = "say" | "introduce" | "pontificate" | "converse";

/** One call the page makes with the generated `platform=web` client. */
export interface CallSpec {
  /** The server's root URL, e.g. `https://127.0.0.1:1234`. */
  readonly baseUrl: string;
  readonly transport: Transport;
  readonly method: ElizaMethod;
  /**
   * The request messages' text: Say and Introduce send the first (the
   * sentence, the name), Pontificate and Converse send them all (Converse
   * half duplex: all requests, then the responses).
   */
  readonly sentences: readonly string[];
  readonly timeoutMs?: number;
  /** Aborts the call's AbortSignal once this many response messages have arrived. */
  readonly abortAfter?: number;
}

/** A ConnectError as the page saw it, details decoded. */
export interface CallError {
  /** The code's name: "deadline_exceeded", "canceled", ... */
  readonly code: string;
  /** The message without the `[code]` prefix. */
  readonly message: string;
  /** The type name of every detail. */
  readonly detailTypes: string[];
  /** The sentence of each detail of type connectrpc.eliza.v1.SayResponse. */
  readonly detailSentences: string[];
  /** The error's cause (a fetch failure), as a string; absent when none. */
  readonly cause?: string;
}

export interface CallResult {
  /** The response messages' sentences, in order (those received before an error too). */
  readonly messages: string[];
  /** Pontificate's count of request messages. */
  readonly count?: number;
  /** The `x-eliza` response header as the page's script can read it; null when hidden or absent. */
  readonly elizaHeader?: string | null;
  readonly error?: CallError;
}

/** What the page script puts on `globalThis`. */
export interface PageGlobals {
  elizaCall(spec: CallSpec): Promise<CallResult>;
}
