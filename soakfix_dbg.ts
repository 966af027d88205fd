import { openRuntime } from "./mod.ts";
import { flowCacheOf, sandboxPoolOf } from "./src/runtime.ts";
await using rt = await openRuntime({ config: "/tmp/soakfix-dbg/flowstate.yaml", cwd: "/tmp/soakfix-dbg" });
for (let i = 0; i < 3; i++) { await rt.enqueue("count.flow.yaml"); console.log(sandboxPoolOf(rt)!.started, flowCacheOf(rt)!.stats); }
