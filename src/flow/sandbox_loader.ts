/**
 * The Worker that starts a sandboxed node's Worker, for a module whose graph
 * imports a remote module its node's `import:` does not list (see
 * `LoadMode` in `sandbox.ts`; other modules load by `loadChecked`, ~0.5 s
 * sooner). Deno checks a Worker's module graph (its static imports, `with {
 * type: "text" | "json" | "bytes" }` imports, literal dynamic imports)
 * against the thread that creates the Worker, not against the Worker's own
 * permissions, remote modules included. So the runner starts this Worker with
 * read on only what a node module legitimately loads (see `_import_reads.ts`)
 * and with the runner's import permission, and this Worker starts the node's.
 * Deno 2.9 holds a Worker started by a Worker for 500 ms before it runs (its
 * inspector's grace period for a debugger, `wait_for_page_wait_for_debugger`).
 *
 * Messages between the host and the node go over a `MessagePort` the host
 * sends with the start message; this Worker only reports what the node's
 * Worker itself does: an uncaught error (`crash`), or a message the node
 * posted on its Worker's own channel, which Flowstate never uses (`stray`,
 * with a short quote of it: the node's Worker is stopped at once).
 *
 * @module
 */

import { quoteMessage } from "./_sandbox_messages.ts";

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((event: MessageEvent) => void) | null;
};

scope.onmessage = (event: MessageEvent) => {
  scope.onmessage = null;
  const { entry, permissions } = event.data as {
    entry: string;
    permissions: Deno.PermissionOptionsObject;
  };
  let node: Worker;
  try {
    node = new Worker(entry, { type: "module", deno: { permissions } } as WorkerOptions);
  } catch (err) {
    scope.postMessage({ op: "crash", message: (err as Error)?.message ?? String(err) });
    return;
  }
  node.onerror = (e) => {
    // Reported once, to the host. (Deno prints a Worker's uncaught error on stderr even so: the
    // node's Worker reports its own to the host and keeps them from Deno; see sandbox_worker.ts.)
    e.preventDefault();
    scope.postMessage({ op: "crash", message: e.message });
  };
  // Stopped at its first: a node posting huge messages in a loop would queue copies of them
  // here and in the host faster than the host can stop it. Only a short quote goes on.
  node.onmessage = (e) => {
    node.terminate();
    scope.postMessage({ op: "stray", quote: quoteMessage(e.data) });
  };
  node.onmessageerror = () => {
    node.terminate();
    scope.postMessage({ op: "stray", quote: "it could not be received" });
  };
  node.postMessage("port", [event.ports[0]]);
};
