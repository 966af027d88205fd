/**
 * Calling a caller's callback (an `onEvent`, `onLog`, `onStart`, a job's
 * `progress`) so that its bug cannot break the run it reports on. Internal.
 *
 * @module
 */

/**
 * Call `call`; what it throws, or the rejection of the promise it returns (an
 * `async` callback is assignable to a `=> void` one), goes to `failed`
 * instead of up the stack or to an unhandled rejection, which would end the
 * process and leave the run `running`. The promise is not awaited: a run
 * never waits on its listener.
 */
export function callGuarded(call: () => unknown, failed: (error: unknown) => void): void {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    failed(error);
    return;
  }
  if ((typeof result === "object" && result !== null) || typeof result === "function") {
    let then: unknown;
    try {
      then = (result as { then?: unknown }).then;
    } catch (error) {
      failed(error);
      return;
    }
    if (typeof then === "function") {
      try {
        then.call(result, undefined, failed);
      } catch (error) {
        failed(error);
      }
    }
  }
}
