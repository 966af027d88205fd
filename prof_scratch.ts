import { openStore } from "./mod.ts";
const path = "/tmp/prof.db";
const store = await openStore({ plugin: "sqlite", path });
for (let i = 0; i < 20000; i++) {
  for await (const _ of store.list({ prefix: ["orders"], limit: 100 })) {
  }
}
