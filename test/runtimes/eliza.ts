// The Eliza service as every runtime test serves and calls it: one
// implementation and one sequence of calls covering each RPC kind and an
// error, with a result that is plain JSON, so that a process on Deno or Bun
// can print it and the test on Node compare it.
import {
  Code,
  ConnectError,
  isConnectError,
  type ElizaServiceClient,
  type ElizaServiceImplementation,
} from "../gen/eliza/v1/eliza.ElizaService.ts";

export const elizaImplementation: ElizaServiceImplementation = {
  say(request, context) {
    if (request.sentence === "fail") {
      throw new ConnectError("Eliza declines", Code.FailedPrecondition, {
        metadata: { "x-reason": "asked-to-fail" },
      });
    }
    context.responseHeaders.set("x-runtime", runtimeName());
    return { sentence: `You said: ${request.sentence}` };
  },
  async *converse(requests) {
    for await (const request of requests) {
      yield { sentence: `You said: ${request.sentence}` };
    }
  },
  async *introduce(request) {
    for (let i = 1; i <= 3; i++) {
      yield { sentence: `${request.name}, sentence ${i}` };
    }
  },
  async pontificate(requests) {
    const sentences: string[] = [];
    for await (const request of requests) sentences.push(request.sentence);
    return { sentence: sentences.join(" "), count: sentences.length };
  },
};

/** What callEveryKind returns. */
export interface Results {
  say: string;
  sayHeader: string;
  error: { code: Code; message: string; reason: string };
  introduce: string[];
  pontificate: { sentence: string; count: number };
  converse: string[];
}

/** What callEveryKind returns when every call works. */
export const expectedResults: Results = {
  say: "You said: hello",
  sayHeader: "(any)",
  error: {
    code: Code.FailedPrecondition,
    message: "Eliza declines",
    reason: "asked-to-fail",
  },
  introduce: ["Ada, sentence 1", "Ada, sentence 2", "Ada, sentence 3"],
  pontificate: { sentence: "one two three", count: 3 },
  converse: ["You said: a", "You said: b"],
};

/**
 * Calls each method once, and Say once more to fail. Bidi sends all its
 * requests before it reads: over HTTP/1.1 a bidi call is half-duplex.
 */
export async function callEveryKind(
  client: ElizaServiceClient,
  kinds: { readonly clientStreams: boolean } = { clientStreams: true },
): Promise<Partial<Results>> {
  const results: Partial<Results> = {};
  const said = await client.say.raw({ sentence: "hello" });
  results.say = said.message.sentence;
  results.sayHeader = said.header.has("x-runtime") ? "(any)" : "(missing)";
  try {
    await client.say({ sentence: "fail" });
  } catch (e) {
    if (!isConnectError(e)) throw e;
    results.error = {
      code: e.code,
      message: e.rawMessage,
      reason: e.metadata.get("x-reason") ?? "(missing)",
    };
  }
  results.introduce = [];
  for await (const r of client.introduce({ name: "Ada" })) {
    results.introduce.push(r.sentence);
  }
  if (!kinds.clientStreams) return results;
  const pontificated = await client.pontificate(
    sentences(["one", "two", "three"]),
  );
  results.pontificate = {
    sentence: pontificated.sentence,
    count: pontificated.count,
  };
  results.converse = [];
  for await (const r of client.converse(sentences(["a", "b"]))) {
    results.converse.push(r.sentence);
  }
  return results;
}

async function* sentences(list: string[]) {
  for (const sentence of list) yield { sentence };
}

function runtimeName(): string {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}
