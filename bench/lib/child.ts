// The line protocol between the orchestrator and the processes it starts
// (servers, the streaming load client, the client benchmarks). A child
// writes one JSON object per line on stdout ({"event":"listening",...},
// {"event":"ready"}, ...) and reads one command per line on stdin. Windows
// are opened and closed by the orchestrator, so that it can read the
// measured process's CPU time exactly at their edges; a child that loses
// its parent (stdin closed) exits rather than lingering on a core.
import { createInterface } from "node:readline";

/** Child side: reports an event to the orchestrator. */
export function emit(event: string, data: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ ...data, event })}\n`);
}

const commandWaiters = new Map<string, () => void>();
const commandsReceived = new Set<string>();
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const command = line.trim();
    const waiter = commandWaiters.get(command);
    if (waiter === undefined) commandsReceived.add(command);
    else {
      commandWaiters.delete(command);
      waiter();
    }
  });
  // The orchestrator went away, or is done with us.
  lines.on("close", () => process.exit(0));
}

/** Child side: exits when the orchestrator closes stdin. */
export function exitWithParent(): void {
  listen();
}

/** Child side: resolves when the orchestrator sends `command`. */
export function waitForCommand(command: string): Promise<void> {
  listen();
  if (commandsReceived.delete(command)) return Promise.resolve();
  return new Promise((resolve) => commandWaiters.set(command, resolve));
}

/** Child side: reads `--name value` options. */
export function argValue(name: string, fallback?: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index < 0 ? fallback : process.argv[index + 1];
  if (value === undefined) throw new Error(`missing --${name}`);
  return value;
}
