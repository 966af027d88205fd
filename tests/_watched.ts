/**
 * A child process whose output is collected as it comes, for tests that wait
 * for a line in it (never a fixed time).
 *
 * @module
 */
import { HANG_LIMIT_MS } from "./_deadline.ts";

/** How long {@linkcode Watched.until} and {@linkcode Watched.code} wait before failing (a hang guard). */
const UNTIL_LIMIT_MS = HANG_LIMIT_MS;

/** A child process whose output is collected as it comes, to wait for a line in it. */
export class Watched implements AsyncDisposable {
  stdout = "";
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;
  #waiters: (() => void)[] = [];
  #exited = false;

  /** Spawn `command` (its stdout and stderr piped). */
  constructor(command: Deno.Command) {
    this.#child = command.spawn();
    const pump = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) {
        this[into] += text;
        for (const wake of this.#waiters.splice(0)) wake();
      }
    };
    this.#done = Promise.all([
      pump(this.#child.stdout, "stdout"),
      pump(this.#child.stderr, "stderr"),
    ]).then(() => {
      this.#exited = true;
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /**
   * Resolves once `pattern` matches what it printed on `stream` (from the
   * character `from` on), failing if it exits first.
   */
  async until(
    pattern: RegExp,
    stream: "stdout" | "stderr" = "stdout",
    from = 0,
  ): Promise<void> {
    // Not a timing assertion: a guard that turns a hang into a failure that shows the output.
    const deadline = Date.now() + UNTIL_LIMIT_MS;
    while (!pattern.test(this[stream].slice(from))) {
      if (this.#exited || Date.now() >= deadline) {
        throw new Error(
          `${
            this.#exited ? "exited" : `still running after ${UNTIL_LIMIT_MS / 1000} s`
          } before printing ${pattern}:\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, deadline - Date.now());
      });
      clearTimeout(timer);
    }
  }

  /** Send it `signal`. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /**
   * Its exit code, once its output is all read; a child still running after
   * the same limit as {@linkcode Watched.until} is killed and the wait fails
   * with its output (a hang shown, not waited out).
   */
  async code(): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((resolve) => {
      timer = setTimeout(() => resolve("hung"), UNTIL_LIMIT_MS);
    });
    const done = await Promise.race([this.#done, hung]);
    clearTimeout(timer);
    if (done === "hung") {
      this.kill("SIGKILL");
      await this.#done;
      throw new Error(
        `still running after ${
          UNTIL_LIMIT_MS / 1000
        } s when its exit was awaited:\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
      );
    }
    return (await this.#child.status).code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.#done;
    await this.#child.status;
  }
}
