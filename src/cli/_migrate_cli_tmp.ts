import { main } from "./_main_migrate_tmp.ts";
Deno.exit(await main(Deno.args));
