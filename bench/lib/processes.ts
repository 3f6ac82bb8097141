// Orchestrator side of child processes: starts them (pinned), reads their
// JSON events, sends commands, stops them.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export type ChildEvent = Record<string, unknown> & { event: string };

export class Child {
  readonly pid: number;
  readonly label: string;
  private readonly process: ChildProcess;
  private readonly events: ChildEvent[] = [];
  private waiter: (() => void) | undefined;
  private exited: string | undefined;
  private stderrTail = "";

  constructor(label: string, command: string, args: readonly string[]) {
    this.label = label;
    this.process = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    if (this.process.pid === undefined) {
      throw new Error(`${label}: could not start ${command}`);
    }
    this.pid = this.process.pid;
    createInterface({ input: this.process.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      try {
        this.events.push(JSON.parse(line) as ChildEvent);
      } catch {
        return;
      }
      this.wake();
    });
    // Kept for error messages only: a server that logs per request must
    // not flood the benchmark's output.
    this.process.stderr!.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
    });
    this.process.on("exit", (code, signal) => {
      this.exited = signal ?? `exit code ${code}`;
      this.wake();
    });
    this.process.stdin!.on("error", () => {});
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** The next event named `name` (earlier events of other names are dropped). */
  async next(name: string, timeoutMs: number): Promise<ChildEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.events.length > 0) {
        const event = this.events.shift()!;
        if (event.event === "error") {
          throw new Error(`${this.label}: ${String(event["message"])}`);
        }
        if (event.event === name) return event;
      }
      if (this.exited !== undefined) {
        throw new Error(
          `${this.label} ended (${this.exited}) before "${name}"${this.stderrTail ? `:\n${this.stderrTail}` : ""}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.label}: no "${name}" within ${timeoutMs} ms${this.stderrTail ? `:\n${this.stderrTail}` : ""}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Why the process is gone, with the end of its stderr; undefined while it runs. */
  exitReport(): string | undefined {
    if (this.exited === undefined) return undefined;
    return `${this.label} ended (${this.exited})${this.stderrTail ? `:\n${this.stderrTail}` : ""}`;
  }

  send(command: string): void {
    this.process.stdin!.write(`${command}\n`);
  }

  /** Closes stdin (children exit on it), then SIGTERM, then SIGKILL. */
  async stop(): Promise<void> {
    if (this.exited !== undefined) return;
    const exited = new Promise<void>((resolve) =>
      this.process.once("exit", () => resolve()),
    );
    this.process.stdin!.end();
    const term = setTimeout(() => this.process.kill("SIGTERM"), 1000);
    const kill = setTimeout(() => this.process.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

/** Runs a command to completion, collecting its stdout and stderr. */
export function runToCompletion(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
