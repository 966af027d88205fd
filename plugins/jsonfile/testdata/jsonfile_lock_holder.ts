/**
 * Test helper for jsonfile_test.ts: takes a jsonfile store's lock the way the
 * plugin does (an exclusive OS lock on `<store>.lock`, then its pid, host name
 * and time written into the file), prints "locked", and keeps it until killed.
 * Usage: jsonfile_lock_holder.ts <lock file path>
 */
const [lockPath] = Deno.args;
const file = await Deno.open(lockPath, { read: true, write: true, create: true });
await file.lock(true);
const holder = { pid: Deno.pid, hostname: Deno.hostname(), since: new Date().toISOString() };
await file.write(new TextEncoder().encode(`${JSON.stringify(holder)}\n`));
console.log("locked");
setInterval(() => {}, 60_000);
