/** The plugin's own options; protoplugin handles target, import_extension and its other built-ins. */
export interface Options {
  readonly client: boolean;
  readonly server: boolean;
  readonly platform: "node" | "web";
  readonly naming: "camel" | "proto";
  /** The protocols the generated code speaks, in the order given; never empty. */
  readonly protocols: readonly Protocol[];
  /** Whether the JSON codec is generated; without it, binary protobuf only. */
  readonly json: boolean;
  /**
   * "inline": each service file carries the runtime it uses. "shared": one
   * file of the output carries the runtime of all its services, which import
   * it from there.
   */
  readonly runtime: "inline" | "shared";
  /**
   * Whether grpc.health.v1.Health and grpc.reflection.v1.ServerReflection
   * are added to the output (generator/operations/).
   */
  readonly health: boolean;
  readonly reflection: boolean;
}

export type Protocol = (typeof protocolNames)[number];

const protocolNames = ["connect", "grpc", "grpc-web"] as const;

const choices = {
  client: ["true", "false"],
  server: ["true", "false"],
  platform: ["node", "web"],
  naming: ["camel", "proto"],
  protocols: protocolNames,
  json: ["true", "false"],
  runtime: ["inline", "shared"],
  health: ["true", "false"],
  reflection: ["true", "false"],
} as const;

// protoplugin parses these itself; we only check their values first, to name the accepted ones.
const builtinChoices: Record<string, readonly string[] | undefined> = {
  target: ["ts", "js+dts", "js", "dts", "ts+js+dts"],
  import_extension: ["js", "ts", "none"],
};

/** protoplugin's own options: what it shares with protoc-gen-es. */
export const builtinOptionNames: readonly string[] = [
  "target",
  "import_extension",
  "js_import_style",
  "keep_empty_files",
  "rewrite_imports",
  "map_imports",
  "ts_nocheck",
  "elide_plugin_version",
  "bootstrap_wkt",
];

export class OptionError extends Error {
  override name = "OptionError";
}

/** Parses the plugin's own options, as protoplugin hands them over (built-ins removed). */
export function parseOptions(
  raw: readonly { key: string; value: string }[],
): Options {
  const options = {
    client: true,
    server: true,
    platform: "node",
    naming: "camel",
    protocols: [],
    json: true,
    runtime: "inline",
    health: false,
    reflection: false,
  } as {
    -readonly [K in keyof Options]: Options[K];
  };
  let protocols: Protocol[] | undefined;
  // Whether the previous parameter was "protocols" or a name continuing it.
  let inProtocols = false;
  for (const { key, value } of raw) {
    // Parameters are split on ",", so "protocols=connect,grpc" arrives as
    // "protocols=connect" and a bare "grpc": the bare names continue it.
    if (
      inProtocols &&
      value === "" &&
      (protocolNames as readonly string[]).includes(key)
    ) {
      protocols!.push(key as Protocol);
      continue;
    }
    inProtocols = key === "protocols";
    if (!(key in choices)) {
      const known = [
        ...Object.keys(builtinChoices),
        ...Object.keys(choices),
        ...builtinOptionNames.filter((name) => !(name in builtinChoices)),
      ];
      throw new OptionError(
        `unknown option "${key}": accepted options are ${known.join(", ")}`,
      );
    }
    const accepted: readonly string[] = choices[key as keyof typeof choices];
    const values = key === "protocols" ? value.split("+") : [value];
    const invalid = values.find((v) => !accepted.includes(v));
    if (invalid !== undefined) {
      throw new OptionError(
        `invalid value "${invalid}" for option "${key}": accepted values are ${accepted.join(", ")}${key === "protocols" ? ', separated by "," or "+"' : ""}`,
      );
    }
    switch (key) {
      case "client":
      case "server":
      case "json":
      case "health":
      case "reflection":
        options[key] = value === "true";
        break;
      case "platform":
        options.platform = value as Options["platform"];
        break;
      case "naming":
        options.naming = value as Options["naming"];
        break;
      case "runtime":
        options.runtime = value as Options["runtime"];
        break;
      case "protocols":
        protocols ??= [];
        protocols.push(...(values as Protocol[]));
        break;
    }
  }
  const web = options.platform === "web";
  if (protocols === undefined) {
    // gRPC needs HTTP trailers, which fetch cannot send or read.
    options.protocols = web ? ["connect", "grpc-web"] : [...protocolNames];
  } else if (web && protocols.includes("grpc")) {
    throw new OptionError(
      'option "protocols" cannot include grpc with "platform=web": gRPC needs HTTP/2 trailers, which fetch cannot send or read (use grpc-web)',
    );
  } else {
    options.protocols = protocols.filter((p, i) => protocols.indexOf(p) === i);
  }
  if (!options.client && !options.server) {
    throw new OptionError(
      'options "client=false" and "server=false" leave nothing to generate',
    );
  }
  return options;
}

/** Checks the values of protoplugin's built-in options that we document, with a message naming the accepted values. */
export function checkBuiltinOptions(parameter: string): void {
  for (const pair of parameter.split(",")) {
    const eq = pair.indexOf("=");
    const key = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const value = eq < 0 ? "" : pair.slice(eq + 1).trim();
    const accepted = builtinChoices[key];
    if (accepted === undefined) continue;
    const normalized =
      key === "target" ? value.split("+").sort().join("+") : value;
    const normalizedAccepted = accepted.map((a) =>
      key === "target" ? a.split("+").sort().join("+") : a,
    );
    if (!normalizedAccepted.includes(normalized)) {
      throw new OptionError(
        `invalid value "${value}" for option "${key}": accepted values are ${accepted.join(", ")}`,
      );
    }
  }
}
