/**
 * Installs `node:async_hooks`' `AsyncLocalStorage` for {@linkcode withActor}
 * at once: the library's entry point imports this module, so that an actor set
 * before any store with a change feed opens is carried too. (The CLI does not
 * import it: there, a store with a feed loads it when it opens.)
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { installActorStorage } from "./actor.ts";
import type { ChangeActor } from "./types.ts";

installActorStorage(new AsyncLocalStorage<ChangeActor>());
