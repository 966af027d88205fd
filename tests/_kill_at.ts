/**
 * Kill a child process with SIGKILL at a point of its output: for the tests
 * that stop a job with `kill -9` midway and check that running it again
 * finishes it.
 *
 * @module
 */
import { killQuietly, within } from "./_deadline.ts";

/**
 * Read `child`'s stdout line by line to its end, and send SIGKILL once `at`
 * is true of a line. Resolves whether it was sent (false: the child finished
 * before its kill point).
 */
export async function killAtLine(
  child: Deno.ChildProcess,
  at: (line: string) => boolean,
): Promise<boolean> {
  const decoder = new TextDecoder();
  let buffered = "";
  let seen = "";
  let killed = false;
  await within(
    (async () => {
      for await (const chunk of child.stdout) {
        const text = decoder.decode(chunk, { stream: true });
        seen += text;
        buffered += text;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          if (!killed && at(line)) {
            child.kill("SIGKILL");
            killed = true;
          }
        }
      }
    })(),
    `child process ${child.pid}'s stdout to end`,
    { details: () => `stdout:\n${seen}`, onHang: () => killQuietly(child) },
  );
  return killed;
}
