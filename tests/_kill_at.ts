/**
 * Kill a child process with SIGKILL at a point of its output: for the tests
 * that stop a job with `kill -9` midway and check that running it again
 * finishes it.
 *
 * @module
 */

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
  let killed = false;
  for await (const chunk of child.stdout) {
    buffered += decoder.decode(chunk, { stream: true });
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) {
      if (!killed && at(line)) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
  }
  return killed;
}
