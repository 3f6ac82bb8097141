// Bundle size of a one-method browser client (issues #6 and #16): the client this
// plugin generates with `platform=web`, beside the same client built with
// @connectrpc/connect + @connectrpc/connect-web, and the messages-only bundle
// that every client needs, so that the RPC share of each is visible.
//
// Each run generates bench/bundle/proto afresh (protoc-gen-es and this plugin,
// from the current sources) into a temporary directory, writes the entry
// points an application would write, bundles them with esbuild (minified ESM
// for the browser, everything bundled) and compresses with brotli (quality 11).
//
//   node bench/bundle.ts
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants as zlib } from "node:zlib";
import { build, type Metafile } from "esbuild";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = join(repoRoot, "bench/bundle/proto");
const bin = join(repoRoot, "node_modules/.bin");
const KB = 1024;

/** The targets of issue #16. */
const targets = {
  /** The binary-only Connect client's RPC share (bundle − messages only), brotli. */
  rpcShareBrotliBytes: 2 * KB,
  /**
   * The default output's RPC share / connect-web's (binary), brotli: the
   * client as an application creates it without options.
   */
  defaultShareToConnectWeb: 0.8,
};

interface Entry {
  /** Key in the results. */
  readonly id: string;
  /** Row label. */
  readonly label: string;
  /** Directory of the generated code, relative to the work directory. */
  readonly gen: "gen-connect" | "gen-default" | "gen-binary" | "gen-shared";
  readonly source: string;
}

const baseUrl = "https://api.example.com";

// What an application writes: create the client, call the method once, log
// the answer, so that nothing it uses is tree-shaken away.
const oursSource = (options: string) => `
import { createPingServiceClient } from "./gen/bench/v1/ping.PingService";
const client = createPingServiceClient(${JSON.stringify(baseUrl)}${options});
console.log(await client.ping({ text: "hello", count: 1 }));
`;

// The same with a second service of the same messages: what it adds is RPC
// code alone.
const twoServicesSource = `
import { createPingServiceClient } from "./gen/bench/v1/ping.PingService";
import { createPongServiceClient } from "./gen/bench/v1/ping.PongService";
const ping = createPingServiceClient(${JSON.stringify(baseUrl)});
const pong = createPongServiceClient(${JSON.stringify(baseUrl)});
console.log(await ping.ping({ text: "hello", count: 1 }), await pong.pong({ text: "hello", count: 1 }));
`;

const entries: readonly Entry[] = [
  {
    id: "oursConnect",
    label: "ours, protocols=connect",
    gen: "gen-connect",
    source: oursSource(""),
  },
  {
    id: "oursDefault",
    label: "ours, default (connect,grpc-web)",
    gen: "gen-default",
    source: oursSource(""),
  },
  {
    id: "oursDefaultTwo",
    label: "ours, default, two services",
    gen: "gen-default",
    source: twoServicesSource,
  },
  {
    // The default output with what the application opts into: gRPC-Web
    // and JSON, each imported from the file.
    id: "oursDefaultGrpcWebJson",
    label: "ours, default, grpcWebProtocol + jsonCodec()",
    gen: "gen-default",
    source: `
import { createPingServiceClient, grpcWebProtocol, jsonCodec } from "./gen/bench/v1/ping.PingService";
const client = createPingServiceClient(${JSON.stringify(baseUrl)}, { protocol: grpcWebProtocol, codec: jsonCodec() });
console.log(await client.ping({ text: "hello", count: 1 }));
`,
  },
  {
    id: "oursDefaultJson",
    label: "ours, default, jsonCodec()",
    gen: "gen-default",
    source: `
import { createPingServiceClient, jsonCodec } from "./gen/bench/v1/ping.PingService";
const client = createPingServiceClient(${JSON.stringify(baseUrl)}, { codec: jsonCodec() });
console.log(await client.ping({ text: "hello", count: 1 }));
`,
  },
  {
    id: "oursShared",
    label: "ours, default, runtime=shared",
    gen: "gen-shared",
    source: oursSource(""),
  },
  {
    id: "oursSharedTwo",
    label: "ours, default, runtime=shared, two services",
    gen: "gen-shared",
    source: twoServicesSource,
  },
  {
    id: "oursConnectBinary",
    label: "ours, protocols=connect,json=false",
    gen: "gen-binary",
    source: oursSource(""),
  },
  {
    // What opting in to compression (send gzip, accept it in streams) adds.
    id: "oursConnectBinaryGzip",
    label: "ours, protocols=connect,json=false, gzip",
    gen: "gen-binary",
    source: `
import { createPingServiceClient, webCompressionGzip } from "./gen/bench/v1/ping.PingService";
const client = createPingServiceClient(${JSON.stringify(baseUrl)}, { compressions: [webCompressionGzip], sendCompression: "gzip" });
console.log(await client.ping({ text: "hello", count: 1 }));
`,
  },
  {
    id: "connectWeb",
    label: "connect-es + connect-web (binary)",
    gen: "gen-connect",
    source: `
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { PingService } from "./gen/bench/v1/ping_pb";
const transport = createConnectTransport({ baseUrl: ${JSON.stringify(baseUrl)}, useBinaryFormat: true });
const client = createClient(PingService, transport);
console.log(await client.ping({ text: "hello", count: 1 }));
`,
  },
  {
    id: "connectWebJson",
    label: "connect-es + connect-web (JSON, its default)",
    gen: "gen-connect",
    source: `
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { PingService } from "./gen/bench/v1/ping_pb";
const transport = createConnectTransport({ baseUrl: ${JSON.stringify(baseUrl)} });
const client = createClient(PingService, transport);
console.log(await client.ping({ text: "hello", count: 1 }));
`,
  },
  {
    id: "messagesOnly",
    label: "messages only (baseline)",
    gen: "gen-connect",
    source: `
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PingRequestSchema, PingResponseSchema } from "./gen/bench/v1/ping_pb";
const request = create(PingRequestSchema, { text: "hello", count: 1 });
const bytes = toBinary(PingRequestSchema, request);
console.log(fromBinary(PingResponseSchema, bytes));
`,
  },
];

export interface BundleSize {
  readonly label: string;
  readonly minBytes: number;
  readonly brotliBytes: number;
  /** Bundle − messages only. */
  readonly rpcShareMinBytes: number;
  readonly rpcShareBrotliBytes: number;
  /** Whole bundle / connect-web's, brotli. */
  readonly vsConnectWebBrotli: number;
  readonly vsConnectWebMin: number;
  /** Minified bytes in the bundle by origin (esbuild metafile). */
  readonly composition: Record<string, number>;
  /** Whether @bufbuild/protobuf's JSON code (to-json.js, from-json.js) is in the bundle. */
  readonly includesProtobufJson: boolean;
}

export interface BundleResults {
  readonly kb: number;
  readonly tools: Record<string, string>;
  readonly bundles: Record<string, BundleSize>;
  /**
   * What `codec: jsonCodec()` adds to the default client: @bufbuild/protobuf's
   * JSON code (with the reflection code only it uses) and the codec.
   */
  readonly jsonCost: {
    readonly minBytes: number;
    readonly brotliBytes: number;
  };
  /** What a second service adds to a bundle, brotli bytes. */
  readonly secondService: {
    readonly selfContained: number;
    readonly shared: number;
  };
  readonly targets: {
    readonly rpcShareBrotli: {
      readonly bytes: number;
      readonly limit: number;
      readonly met: boolean;
    };
    readonly defaultShareVsConnectWeb: {
      readonly ratio: number;
      /** The same with `codec: jsonCodec()`, against connect-web's JSON default. */
      readonly jsonRatio: number;
      readonly limit: number;
      readonly met: boolean;
    };
  };
}

/** Generates the messages and both variants of our client into `work`. */
function generate(work: string): void {
  const plugin = join(repoRoot, "bin/protoc-gen-connect-standalone");
  const lines = ["version: v2", "plugins:"];
  for (const [dir, opt] of [
    ["gen-connect", "server=false,platform=web,protocols=connect"],
    ["gen-default", "server=false,platform=web"],
    ["gen-binary", "server=false,platform=web,protocols=connect,json=false"],
    ["gen-shared", "server=false,platform=web,runtime=shared"],
  ] as const) {
    const out = JSON.stringify(join(work, dir));
    lines.push(
      "  - local: protoc-gen-es",
      `    out: ${out}`,
      "    opt: target=ts",
      `  - local: ${JSON.stringify(plugin)}`,
      `    out: ${out}`,
      `    opt: ${JSON.stringify(opt)}`,
    );
  }
  const template = join(work, "buf.gen.yaml");
  writeFileSync(template, lines.join("\n") + "\n");
  execFileSync(join(bin, "buf"), ["generate", "--template", template], {
    cwd: protoDir,
    env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const jsonOrigin = "@bufbuild/protobuf to-json+from-json";

/** Names the origin of an input file of the bundle. */
function origin(path: string): string {
  if (/@bufbuild\/protobuf\/.*\/(to|from)-json\.js$/.test(path))
    return jsonOrigin;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (pkg)
    return pkg[1] === "@bufbuild/protobuf"
      ? "@bufbuild/protobuf (rest)"
      : pkg[1]!;
  if (path.endsWith("_pb.ts")) return "messages (_pb.ts)";
  if (/\.P[io]ngService\.ts$/.test(path)) return "generated client";
  if (path.endsWith("connect-standalone.runtime.ts")) return "shared runtime";
  return "entry";
}

async function bundle(
  work: string,
  entry: Entry,
): Promise<{ min: Uint8Array; metafile: Metafile }> {
  // The entry imports ./gen/...: each variant has its own directory.
  mkdirSync(join(work, "entries", entry.gen), { recursive: true });
  const entryFile = join(work, "entries", entry.gen, `${entry.id}.ts`);
  writeFileSync(
    entryFile,
    entry.source.replaceAll("./gen/", `../../${entry.gen}/`),
  );
  const result = await build({
    entryPoints: [entryFile],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: work,
    // The work directory is outside the repository: resolve packages from it.
    nodePaths: [join(repoRoot, "node_modules")],
  });
  const out = result.outputFiles[0];
  if (out === undefined)
    throw new Error(`esbuild wrote nothing for ${entry.id}`);
  return { min: out.contents, metafile: result.metafile };
}

function brotli(data: Uint8Array): number {
  return brotliCompressSync(data, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: 11,
      [zlib.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  }).length;
}

function composition(metafile: Metafile): Record<string, number> {
  const byOrigin: Record<string, number> = {};
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, input] of Object.entries(output.inputs)) {
      const key = origin(path.replaceAll("\\", "/"));
      byOrigin[key] = (byOrigin[key] ?? 0) + input.bytesInOutput;
    }
  }
  return byOrigin;
}

function version(pkg: string): string {
  const json = JSON.parse(
    readFileSync(join(repoRoot, "node_modules", pkg, "package.json"), "utf8"),
  ) as { version: string };
  return json.version;
}

const kb = (bytes: number) => (bytes / KB).toFixed(2);
const signedKb = (bytes: number) =>
  (bytes < 0 ? "-" : "") + kb(Math.abs(bytes));
const pct = (ratio: number) => `${(ratio * 100).toFixed(0)}%`;

function verdict(met: boolean, miss: string): string {
  return met ? "met" : `missed by ${miss}`;
}

function formatTable(results: BundleResults): string {
  const header = [
    "entry",
    "min KB",
    "brotli KB",
    "RPC share min",
    "RPC share brotli",
    "vs connect-web",
  ];
  const rows = Object.values(results.bundles).map((b) => [
    b.label,
    kb(b.minBytes),
    kb(b.brotliBytes),
    signedKb(b.rpcShareMinBytes),
    signedKb(b.rpcShareBrotliBytes),
    `${pct(b.vsConnectWebBrotli)} (min ${pct(b.vsConnectWebMin)})`,
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i]!.length)),
  );
  const line = (cells: string[]) =>
    "| " +
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join(" | ") +
    " |";
  const out = [
    "Bundle size: one-method browser client (esbuild, minified ESM, es2022; brotli q11; KB = 1024 bytes)",
    "",
    line(header),
    "|" +
      widths
        .map(
          (w, i) =>
            (i === 0 ? "-" : "") + "-".repeat(w + 1) + (i === 0 ? "" : ":"),
        )
        .join("|") +
      "|",
    ...rows.map(line),
    "",
    "RPC share = bundle − messages only. vs connect-web = whole bundle, brotli (minified in parentheses).",
  ];
  const t = results.targets;
  out.push(
    `Target: web client RPC share ≤ ${kb(t.rpcShareBrotli.limit)} KB brotli: ` +
      `protocols=connect,json=false ${kb(t.rpcShareBrotli.bytes)} KB, ` +
      verdict(
        t.rpcShareBrotli.met,
        `${kb(t.rpcShareBrotli.bytes - t.rpcShareBrotli.limit)} KB`,
      ),
  );
  const d = t.defaultShareVsConnectWeb;
  out.push(
    `Target: default output's RPC share ≤ ${d.limit.toFixed(2)}x connect-web's (brotli): ` +
      `${d.ratio.toFixed(2)}x, ` +
      verdict(d.met, `${(d.ratio - d.limit).toFixed(2)}x`) +
      `; with jsonCodec(), against connect-web's JSON: ${d.jsonRatio.toFixed(2)}x.`,
  );
  out.push(
    `jsonCodec() brings in @bufbuild/protobuf's JSON code (and the reflection code only it uses): ` +
      `${kb(results.jsonCost.minBytes)} KB minified, ${kb(results.jsonCost.brotliBytes)} KB brotli; ` +
      `a client that does not import it carries none of it (${
        results.bundles["oursDefault"]!.includesProtobufJson ||
        results.bundles["oursConnectBinary"]!.includesProtobufJson
          ? "yet it is bundled: a bug"
          : "not bundled"
      }).`,
  );
  out.push(
    `A second service adds ${kb(results.secondService.selfContained)} KB brotli to the bundle ` +
      `(default output: each file carries its runtime), ${kb(results.secondService.shared)} KB with runtime=shared.`,
  );
  out.push("", "Composition (minified KB by origin, from esbuild's metafile):");
  for (const b of Object.values(results.bundles)) {
    const parts = Object.entries(b.composition)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${kb(n)}`);
    out.push(`  ${b.label.trim()}: ${parts.join(", ")}`);
  }
  return out.join("\n");
}

export async function run(
  _options: { quick: boolean } = { quick: false },
): Promise<{ table: string; results: BundleResults }> {
  const work = mkdtempSync(join(tmpdir(), "cs-bench-bundle-"));
  try {
    generate(work);
    const sizes: Record<
      string,
      {
        label: string;
        min: number;
        br: number;
        metafile: Metafile;
      }
    > = {};
    for (const entry of entries) {
      const { min, metafile } = await bundle(work, entry);
      sizes[entry.id] = {
        label: entry.label,
        min: min.length,
        br: brotli(min),
        metafile,
      };
    }
    const base = sizes["messagesOnly"]!;
    const cw = sizes["connectWeb"]!;
    const bundles: Record<string, BundleSize> = {};
    for (const [id, s] of Object.entries(sizes)) {
      const comp = composition(s.metafile);
      bundles[id] = {
        label: s.label,
        minBytes: s.min,
        brotliBytes: s.br,
        rpcShareMinBytes: s.min - base.min,
        rpcShareBrotliBytes: s.br - base.br,
        vsConnectWebBrotli: s.br / cw.br,
        vsConnectWebMin: s.min / cw.min,
        composition: comp,
        includesProtobufJson: (comp[jsonOrigin] ?? 0) > 0,
      };
    }
    // The target is for the smallest web client the plugin can generate.
    const share = bundles["oursConnectBinary"]!.rpcShareBrotliBytes;
    const shareRatio = (ours: string, theirs: string) =>
      bundles[ours]!.rpcShareBrotliBytes / bundles[theirs]!.rpcShareBrotliBytes;
    const defaultRatio = shareRatio("oursDefault", "connectWeb");
    const binary = bundles["oursDefault"]!;
    const withJson = bundles["oursDefaultJson"]!;
    const results: BundleResults = {
      kb: KB,
      tools: {
        esbuild: version("esbuild"),
        "@bufbuild/protobuf": version("@bufbuild/protobuf"),
        "@bufbuild/protoc-gen-es": version("@bufbuild/protoc-gen-es"),
        "@connectrpc/connect": version("@connectrpc/connect"),
        "@connectrpc/connect-web": version("@connectrpc/connect-web"),
      },
      bundles,
      jsonCost: {
        minBytes: withJson.minBytes - binary.minBytes,
        brotliBytes: withJson.brotliBytes - binary.brotliBytes,
      },
      secondService: {
        selfContained:
          bundles["oursDefaultTwo"]!.brotliBytes -
          bundles["oursDefault"]!.brotliBytes,
        shared:
          bundles["oursSharedTwo"]!.brotliBytes -
          bundles["oursShared"]!.brotliBytes,
      },
      targets: {
        rpcShareBrotli: {
          bytes: share,
          limit: targets.rpcShareBrotliBytes,
          met: share <= targets.rpcShareBrotliBytes,
        },
        defaultShareVsConnectWeb: {
          ratio: defaultRatio,
          jsonRatio: shareRatio("oursDefaultJson", "connectWebJson"),
          limit: targets.defaultShareToConnectWeb,
          met: defaultRatio <= targets.defaultShareToConnectWeb,
        },
      },
    };
    return { table: formatTable(results), results };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { table } = await run({ quick: process.argv.includes("--quick") });
  process.stdout.write(table + "\n");
}
