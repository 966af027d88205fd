/**
 * A child process whose output is collected as it comes, for tests that wait
 * for a line in it (never a fixed time).
 *
 * @module
 */

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
    while (!pattern.test(this[stream].slice(from))) {
      if (this.#exited) {
        throw new Error(
          `exited before printing ${pattern}:\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Send it `signal`. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Its exit code, once its output is all read. */
  async code(): Promise<number> {
    await this.#done;
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
