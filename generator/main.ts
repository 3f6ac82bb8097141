import { fromBinary } from "@bufbuild/protobuf";
import {
  CodeGeneratorRequestSchema,
  type CodeGeneratorResponse,
  type CodeGeneratorResponse_File,
} from "@bufbuild/protobuf/wkt";
import { formatGeneratedFiles } from "./format.ts";
import { collectGarbage } from "./performance/memory.ts";
import {
  addOperationProtos,
  operationMessageFiles,
} from "./operations/operations.ts";
import { checkBuiltinOptions } from "./options.ts";
import { loadRuntime, plugin } from "./plugin.ts";
import { writeResponse } from "./performance/response.ts";

/**
 * Runs the plugin on a serialized CodeGeneratorRequest. protoplugin's run is
 * synchronous and prettier is not, so formatting happens on its output.
 */
export async function generate(
  request: Uint8Array,
): Promise<CodeGeneratorResponse> {
  await loadRuntime();
  const { res, messageFiles } = run(request);
  // The request, its schema and what protoplugin built are garbage now
  // (some 150 MB for 100 services); formatting makes more, and collects
  // faster with less alive.
  collectGarbage();
  await formatGeneratedFiles(res.file);
  // protoc-gen-es's files as it formats them, like the user's other _pb files.
  res.file.push(...messageFiles);
  return res;
}

// Apart from generate, so that nothing keeps the decoded request alive
// while the output is formatted.
function run(request: Uint8Array): {
  res: CodeGeneratorResponse;
  messageFiles: CodeGeneratorResponse_File[];
} {
  const req = fromBinary(CodeGeneratorRequestSchema, request);
  checkBuiltinOptions(req.parameter);
  // protoplugin defaults to js+dts; TypeScript is the natural default here.
  if (!/(^|,)\s*target\s*=/.test(req.parameter)) {
    req.parameter =
      req.parameter === "" ? "target=ts" : `target=ts,${req.parameter}`;
  }
  const added = addOperationProtos(req);
  const res = plugin.run(req);
  // After the plugin, which throws on a bad option with a clearer message.
  return { res, messageFiles: operationMessageFiles(req, added) };
}

export async function main(args: string[]): Promise<number> {
  if (args.includes("--version") || args.includes("-v")) {
    process.stdout.write(`${plugin.name} ${plugin.version}\n`);
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(
      `${plugin.name} reads a CodeGeneratorRequest on stdin; run it through buf generate or protoc.\n`,
    );
    return 1;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  try {
    const res = await generate(Buffer.concat(chunks));
    await writeResponse(
      res,
      (chunk) =>
        new Promise<void>((resolve, reject) =>
          process.stdout.write(chunk, (e) => (e ? reject(e) : resolve())),
        ),
    );
    return 0;
  } catch (e) {
    process.stderr.write(
      `${plugin.name}: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    return 1;
  }
}
