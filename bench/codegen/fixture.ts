// Writes a deterministic protobuf input of N services for the code generation
// benchmark (bench/codegen.ts): one file per service, each with 4 to 8 methods
// of all four kinds and its own request and response messages, a mix of
// field types (scalars, 64-bit integers, bytes, enums, nested and imported
// messages, repeated fields, maps, oneofs, optional fields, well-known
// types), comments, imports between files, and a NO_SIDE_EFFECTS method in
// every fourth service.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface FixtureStats {
  readonly files: number;
  readonly services: number;
  readonly methods: number;
  readonly messages: number;
  readonly protoBytes: number;
}

/** mulberry32: a small seeded PRNG, so that every run writes the same input. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nouns = [
  "Account",
  "Order",
  "Invoice",
  "Product",
  "Customer",
  "Shipment",
  "Payment",
  "Ticket",
  "Project",
  "Document",
  "Device",
  "Sensor",
  "Playlist",
  "Booking",
  "Warehouse",
  "Campaign",
  "Subscription",
  "Review",
  "Message",
  "Team",
];

const unaryVerbs = ["List", "Create", "Update", "Delete", "Search", "Count"];
const serverStreamVerbs = ["Watch", "Export", "Tail"];
const clientStreamVerbs = ["Upload", "Import", "Record"];
const bidiVerbs = ["Sync", "Chat", "Exchange"];

const fieldWords = [
  "name",
  "title",
  "description",
  "owner",
  "region",
  "label",
  "note",
  "reference",
  "source",
  "target",
  "status_text",
  "token",
  "locale",
  "email",
  "url",
  "version",
  "revision",
  "priority",
  "quantity",
  "weight",
  "score",
  "checksum",
  "payload",
  "tag",
  "category",
];

type Kind = "unary" | "server" | "client" | "bidi";

interface Context {
  readonly rand: () => number;
  readonly noun: string;
  /** The entity message of the file imported from an earlier service, if any. */
  readonly imported: string | undefined;
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function int(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c, i: number) =>
    i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`,
  );
}

/** The fields of a request or response message: 3 to 10, of mixed types. */
function fields(ctx: Context, indent: string): string[] {
  const { rand, noun } = ctx;
  const lines: string[] = [];
  const used = new Set<string>();
  let number = 1;
  const name = () => {
    let n = pick(rand, fieldWords);
    while (used.has(n)) n = `${n}_${number}`;
    used.add(n);
    return n;
  };
  const count = int(rand, 3, 10);
  for (let i = 0; i < count; i++) {
    const choice = int(rand, 0, 17);
    const f = name();
    if (rand() < 0.4) {
      lines.push(
        `${indent}// The ${f} of the ${snake(noun).replace(/_/g, " ")}.`,
      );
    }
    switch (choice) {
      case 0:
      case 1:
        lines.push(`${indent}string ${f} = ${number++};`);
        break;
      case 2:
        lines.push(`${indent}int32 ${f} = ${number++};`);
        break;
      case 3:
        lines.push(`${indent}int64 ${f} = ${number++};`);
        break;
      case 4:
        lines.push(`${indent}uint64 ${f} = ${number++};`);
        break;
      case 5:
        lines.push(`${indent}bool ${f} = ${number++};`);
        break;
      case 6:
        lines.push(`${indent}double ${f} = ${number++};`);
        break;
      case 7:
        lines.push(`${indent}bytes ${f} = ${number++};`);
        break;
      case 8:
        lines.push(`${indent}${noun}Kind ${f} = ${number++};`);
        break;
      case 9:
        lines.push(`${indent}${noun} ${f} = ${number++};`);
        break;
      case 10:
        lines.push(`${indent}repeated string ${f} = ${number++};`);
        break;
      case 11:
        lines.push(`${indent}repeated ${noun} ${f} = ${number++};`);
        break;
      case 12:
        lines.push(`${indent}map<string, string> ${f} = ${number++};`);
        break;
      case 13:
        lines.push(`${indent}map<int64, ${noun}.Detail> ${f} = ${number++};`);
        break;
      case 14: {
        lines.push(`${indent}oneof ${f}_choice {`);
        lines.push(`${indent}  string ${f}_text = ${number++};`);
        lines.push(`${indent}  int64 ${f}_id = ${number++};`);
        lines.push(`${indent}  ${noun}.Detail ${f}_detail = ${number++};`);
        lines.push(`${indent}}`);
        break;
      }
      case 15:
        lines.push(
          `${indent}google.protobuf.Timestamp ${f}_time = ${number++};`,
        );
        break;
      case 16:
        lines.push(`${indent}bench.common.v1.Money ${f}_amount = ${number++};`);
        break;
      case 17:
        lines.push(
          ctx.imported === undefined
            ? `${indent}optional sint32 ${f} = ${number++};`
            : `${indent}${ctx.imported} ${f} = ${number++};`,
        );
        break;
    }
  }
  return lines;
}

const commonProto = `// Types shared by every service of the benchmark input.
syntax = "proto3";

package bench.common.v1;

import "google/protobuf/timestamp.proto";

// An amount of money in a currency.
message Money {
  // ISO 4217 code.
  string currency_code = 1;
  int64 units = 2;
  int32 nanos = 3;
}

// Pagination of a list request.
message PageRequest {
  int32 page_size = 1;
  string page_token = 2;
}

// Pagination of a list response.
message PageResponse {
  string next_page_token = 1;
  int32 total_size = 2;
}

// Who changed a resource, and when.
message Audit {
  string actor = 1;
  google.protobuf.Timestamp time = 2;
  map<string, string> annotations = 3;
}

// The state of a resource.
enum State {
  STATE_UNSPECIFIED = 0;
  STATE_ACTIVE = 1;
  STATE_SUSPENDED = 2;
  STATE_DELETED = 3;
}
`;

function serviceFile(
  index: number,
  rand: () => number,
  previous: { path: string; pkg: string; noun: string } | undefined,
): {
  path: string;
  pkg: string;
  noun: string;
  text: string;
  methods: number;
  messages: number;
} {
  const noun = nouns[index % nouns.length]!;
  const id = String(index).padStart(3, "0");
  const pkg = `bench.svc${id}.v1`;
  const path = `bench/svc${id}/v1/${snake(noun)}.proto`;
  // Every third file imports the previous one and uses its entity message.
  const imported =
    previous !== undefined && index % 3 === 0
      ? `${previous.pkg}.${previous.noun}`
      : undefined;
  const ctx: Context = { rand, noun, imported };

  const kinds: Kind[] = ["unary", "server", "client", "bidi"];
  const methodCount = int(rand, 4, 8);
  while (kinds.length < methodCount) {
    const r = rand();
    kinds.push(
      r < 0.6 ? "unary" : r < 0.8 ? "server" : r < 0.9 ? "client" : "bidi",
    );
  }
  // Shuffle, so that the kinds come in any order.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }

  const usedVerbs = new Set<string>();
  const methods = kinds.map((kind) => {
    const verbs =
      kind === "unary"
        ? unaryVerbs
        : kind === "server"
          ? serverStreamVerbs
          : kind === "client"
            ? clientStreamVerbs
            : bidiVerbs;
    let verb = pick(rand, verbs);
    for (let n = 2; usedVerbs.has(verb); n++) verb = `${pick(rand, verbs)}${n}`;
    usedVerbs.add(verb);
    return { kind, name: `${verb}${noun}` };
  });
  // Every fourth service has a GET-able method.
  const getName = `Get${noun}`;
  const noSideEffects = index % 4 === 0;
  if (noSideEffects) methods.unshift({ kind: "unary", name: getName });

  const out: string[] = [];
  out.push(
    `// ${noun}Service manages ${snake(noun).replace(/_/g, " ")}s.`,
    "//",
    "// It has methods of every kind: unary, server streaming, client",
    "// streaming and bidirectional streaming.",
    `service ${noun}Service {`,
  );
  for (const m of methods) {
    const input = `${m.name}Request`;
    const output = `${m.name}Response`;
    const stream = (s: boolean) => (s ? "stream " : "");
    const describe: Record<Kind, string> = {
      unary: "answers one request",
      server: "streams responses to one request",
      client: "reads a stream of requests, then answers",
      bidi: "answers requests as they arrive",
    };
    out.push(`  // ${m.name} ${describe[m.kind]}.`);
    const head = `  rpc ${m.name}(${stream(m.kind === "client" || m.kind === "bidi")}${input}) returns (${stream(m.kind === "server" || m.kind === "bidi")}${output})`;
    if (noSideEffects && m.name === getName) {
      out.push(
        `${head} {`,
        "    option idempotency_level = NO_SIDE_EFFECTS;",
        "  }",
      );
    } else if (m.kind === "unary" && m.name.startsWith("Delete")) {
      out.push(
        `${head} {`,
        "    option idempotency_level = IDEMPOTENT;",
        "  }",
      );
    } else {
      out.push(`${head} {}`);
    }
  }
  out.push("}", "");

  // The entity, with a nested message and enum.
  out.push(
    `// The ${noun} resource.`,
    `message ${noun} {`,
    "  // A detail of the resource.",
    "  message Detail {",
    "    string key = 1;",
    "    string value = 2;",
    "    repeated int32 positions = 3;",
    "  }",
    "  string id = 1;",
    "  string display_name = 2;",
    `  ${noun}Kind kind = 3;`,
    "  bench.common.v1.State state = 4;",
    "  repeated Detail details = 5;",
    "  bench.common.v1.Audit created = 6;",
    "  map<string, string> labels = 7;",
    "  int64 version = 8;",
    "}",
    "",
    `// The kind of a ${noun}.`,
    `enum ${noun}Kind {`,
    `  ${snake(noun).toUpperCase()}_KIND_UNSPECIFIED = 0;`,
    `  ${snake(noun).toUpperCase()}_KIND_STANDARD = 1;`,
    `  ${snake(noun).toUpperCase()}_KIND_PREMIUM = 2;`,
    `  ${snake(noun).toUpperCase()}_KIND_INTERNAL = 3;`,
    "}",
    "",
  );
  let messages = 2;
  for (const m of methods) {
    for (const suffix of ["Request", "Response"]) {
      out.push(`// The ${suffix.toLowerCase()} of ${m.name}.`);
      out.push(`message ${m.name}${suffix} {`);
      out.push(...fields(ctx, "  "));
      if (m.name.startsWith("List")) {
        out.push(
          suffix === "Request"
            ? "  bench.common.v1.PageRequest page = 100;"
            : "  bench.common.v1.PageResponse page = 100;",
        );
      }
      out.push("}", "");
      messages++;
    }
  }
  // Import only what the messages use (buf warns about unused imports).
  const body = out.join("\n");
  const imports = ["bench/common/v1/common.proto"];
  if (body.includes("google.protobuf.Timestamp ")) {
    imports.push("google/protobuf/timestamp.proto");
  }
  if (imported !== undefined && body.includes(`${imported} `)) {
    imports.push(previous!.path);
  }
  const head = [
    `// The ${noun} service of the benchmark input (service ${index}).`,
    "// Generated by bench/codegen/fixture.ts.",
    'syntax = "proto3";',
    "",
    `package ${pkg};`,
    "",
    ...imports.map((i) => `import "${i}";`),
    "",
  ];
  return {
    path,
    pkg,
    noun,
    text: [...head, body].join("\n"),
    methods: methods.length,
    messages,
  };
}

/** Writes the input (buf.yaml and the .proto files) into `dir`. */
export function writeFixture(
  dir: string,
  services: number,
  seed = 6,
): FixtureStats {
  const rand = prng(seed);
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
    return Buffer.byteLength(text);
  };
  let protoBytes = write("buf.yaml", "version: v2\n");
  protoBytes += write("bench/common/v1/common.proto", commonProto);
  let previous: { path: string; pkg: string; noun: string } | undefined;
  let methods = 0;
  let messages = 4;
  for (let i = 0; i < services; i++) {
    const file = serviceFile(i, rand, previous);
    protoBytes += write(file.path, file.text);
    methods += file.methods;
    messages += file.messages;
    previous = file;
  }
  return { files: services + 1, services, methods, messages, protoBytes };
}
