/**
 * What the harness (`mod.ts`) gives the case files: the run of one case and
 * the function that registers a case.
 *
 * @module
 */
import type { IndexDeclaration, SearchDeclaration, Store } from "../../store/types.ts";
import type { FakeClock } from "../clock.ts";
import type { ChangesConfig } from "../../plugin.ts";

/** What a case body gets: its id, its clock, and open/reopen that track what to close. */
export interface CaseRun {
  readonly id: string;
  readonly clock: FakeClock;
  /** Open the store for this case's id (with these indexes and search). The first open must be empty. */
  open(
    declarations?: {
      indexes?: IndexDeclaration[];
      search?: SearchDeclaration;
      changes?: ChangesConfig;
    },
  ): Promise<Store>;
  /** Close `store`, then open the same id again. */
  reopen(store: Store): Promise<Store>;
  /**
   * How a second OS process opens this case's store (`options.multiProcess`
   * of `testStore`), or `undefined` when the plugin's test did not say.
   */
  readonly secondProcess?: { spec: Record<string, unknown>; flags: string[] };
}

/** Registers one case under `name` (a step name of the report, and the key of `options.skip`). */
export type DefineCase = (name: string, run: (c: CaseRun) => Promise<void>) => void;
