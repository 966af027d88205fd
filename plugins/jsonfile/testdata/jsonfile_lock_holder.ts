/**
 * Test helper for jsonfile_test.ts: takes a jsonfile store's lock the way the
 * plugin does (an exclusive OS lock on `<store>.lock`, then its pid, host name
 * and time written into the file), prints "locked", and keeps it until killed.
 * With `holdMs`, the line it writes publishes that as its usual hold time (as
 * a holder that has measured its commits does); with `releaseAfterMs`, it
 * releases the lock after that long, prints "released" and exits.
 * Usage: jsonfile_lock_holder.ts <lock file path> [holdMs] [releaseAfterMs]
 */
const [lockPath, holdMs, releaseAfterMs] = Deno.args;
const file = await Deno.open(lockPath, { read: true, write: true, create: true });
await file.lock(true);
const holder = {
  pid: Deno.pid,
  hostname: Deno.hostname(),
  since: new Date().toISOString(),
  ...holdMs === undefined ? {} : { holdMs: Number(holdMs) },
};
await file.write(new TextEncoder().encode(`${JSON.stringify(holder)}\n`));
console.log("locked");
if (releaseAfterMs === undefined) {
  setInterval(() => {}, 60_000);
} else {
  setTimeout(() => {
    file.unlockSync();
    console.log("released");
    file.close();
  }, Number(releaseAfterMs));
}
