/**
 * Test helper for jsonfile_test.ts: takes a jsonfile store's lock file the way
 * the plugin does (created exclusively; pid, host name and time inside), prints
 * "locked", and keeps it until killed.
 * Usage: jsonfile_lock_holder.ts <lock file path>
 */
const [lockPath] = Deno.args;
await Deno.writeTextFile(
  lockPath,
  JSON.stringify({ pid: Deno.pid, hostname: Deno.hostname(), createdAt: new Date().toISOString() }),
  { createNew: true },
);
console.log("locked");
setInterval(() => {}, 60_000);
