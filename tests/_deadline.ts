/**
 * Hang guards of the tests: a wait that the code under test may never end
 * (a child that does not exit, a line never printed, a state never reached,
 * a server that never answers) fails after {@linkcode HANG_LIMIT_MS} with
 * what was awaited and what was seen so far, instead of blocking the whole
 * suite until CI's limit.
 *
 * Not timing assertions: the limit is far beyond any wait that is not a hang
 * on a loaded 2-core machine.
 *
 * @module
 */

/** How long a guarded wait may last before it fails (2 minutes). */
export const HANG_LIMIT_MS = 120_000;

/** What a guarded wait shows and does when it fails. */
export interface HangOptions {
  /** What was seen so far (a child's output, the last state), added to the failure. */
  details?: () => string;
  /** Run before failing, e.g. kill the child that was awaited. */
  onHang?: () => void;
  /** The limit (default {@linkcode HANG_LIMIT_MS}). */
  ms?: number;
}

function hangError(what: string, ms: number, details?: () => string): Error {
  const seen = details?.() ?? "";
  return new Error(
    `gave up waiting after ${ms / 1000} s: ${what}${seen === "" ? "" : `\n${seen}`}`,
  );
}

/**
 * `promise`, or a failure naming `what` (and `details()`) once the limit
 * (or `hang` ms) passed; `onHang` runs first.
 */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  hang: HangOptions | number = {},
): Promise<T> {
  const options = typeof hang === "number" ? { ms: hang } : hang;
  const ms = options.ms ?? HANG_LIMIT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          try {
            options.onHang?.();
          } finally {
            reject(hangError(what, ms, options.details));
          }
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Wait until `check` resolves true, polling every `every` ms; fails with
 * `what` and `details()` (the last state seen) after the limit. Each check
 * is itself bounded by what is left of the limit.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: HangOptions & { every?: number } = {},
): Promise<void> {
  const ms = options.ms ?? HANG_LIMIT_MS;
  const end = Date.now() + ms;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) throw hangError(what, ms, options.details);
    if (await within(Promise.resolve(check()), what, { ...options, ms: left })) return;
    await new Promise((r) => setTimeout(r, options.every ?? 50));
  }
}

/**
 * A signal for a `fetch` to a server under test: one that never answers
 * fails the test after the limit instead of hanging it.
 */
export function hangSignal(): AbortSignal {
  return AbortSignal.timeout(HANG_LIMIT_MS);
}

/** SIGKILL `child` unless it is gone already. */
export function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
}

/**
 * `child.status`, or, if it is still running after the limit, a failure
 * with `output()` (what it printed so far) once it is killed with SIGKILL.
 */
export function exitOf(
  child: Deno.ChildProcess,
  output?: () => string,
  options: { ms?: number } = {},
): Promise<Deno.CommandStatus> {
  return within(child.status, `child process ${child.pid} to exit`, {
    ...options,
    ...(output === undefined ? {} : { details: output }),
    onHang: () => killQuietly(child),
  });
}

/** A finished process's exit code and signal, and what it printed, decoded. */
export interface Output {
  code: number;
  signal: Deno.Signal | null;
  success: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Like `command.output()` (its stdout and stderr decoded), but a process
 * still running after the limit is killed and the wait fails with what it
 * printed so far. Given a spawned child, it waits for that one (its output
 * not read yet).
 */
export async function outputOf(
  command: Deno.Command | Deno.ChildProcess,
  options: { ms?: number } = {},
): Promise<Output> {
  const child = command instanceof Deno.Command ? command.spawn() : command;
  const text = { stdout: "", stderr: "" };
  const read = async (name: "stdout" | "stderr") => {
    let stream: ReadableStream<Uint8Array>;
    try {
      stream = child[name];
    } catch {
      return; // not piped
    }
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text[name] += chunk;
  };
  const reading = Promise.all([read("stdout"), read("stderr")]);
  const printed = () => `stdout:\n${text.stdout}\nstderr:\n${text.stderr}`;
  // On a hang the reads are left behind: the test fails with what they got so far.
  const status = await exitOf(child, printed, options);
  await within(reading, `child process ${child.pid}'s output to end`, {
    ...options,
    details: printed,
  });
  return { ...status, ...text };
}

/**
 * A watchdog over `child` for a scope (`using _hang = hangGuard(child, …)`):
 * if the child is still running after the limit it is killed with SIGKILL
 * (so that any read of its output ends), `output()` as it was then is
 * printed, and leaving the scope fails with it. For tests that read a
 * child's output in loops of their own.
 */
export function hangGuard(
  child: Deno.ChildProcess,
  output: () => string = () => "",
  options: { ms?: number } = {},
): Disposable {
  const ms = options.ms ?? HANG_LIMIT_MS;
  let hung: Error | undefined;
  let ended = false;
  child.status.then(() => ended = true, () => ended = true);
  const timer = setTimeout(() => {
    if (ended) return;
    hung = hangError(`child process ${child.pid} to end (killed)`, ms, output);
    // Said now too: if the test then fails on the output cut short, the two errors show only
    // as a SuppressedError.
    console.error(hung.message);
    killQuietly(child);
  }, ms);
  return {
    [Symbol.dispose]() {
      clearTimeout(timer);
      if (hung) throw hung;
    },
  };
}
