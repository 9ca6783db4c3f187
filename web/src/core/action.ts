// A user action on a page: the error of the last action is cleared, the page is busy while
// any action runs (buttons disable themselves), and what fails is shown instead of thrown.
// Framework-free: a store passes how to set its busy flag and its error
// (composables/useAction.ts does it for a component's own busy flag and error).

export interface ActionHooks {
  /** true while at least one action runs */
  setBusy(on: boolean): void;
  /** null clears the shown error; anything else is what an action threw */
  setError(e: unknown): void;
}

export interface ActionOptions {
  /** One action at a time: an action asked for while another of this runner runs (a second
   * click before the first has settled) is dropped, fn not run, the error left as it is. */
  exclusive?: boolean;
}

export type Action = (fn: () => unknown) => Promise<void>;

/** The page's `action(fn)`: runs fn, marks busy until every started action has settled,
 * and hands a failure to setError (the returned promise never rejects). */
export function actionRunner(hooks: ActionHooks, { exclusive = false }: ActionOptions = {}): Action {
  let running = 0;
  return async (fn) => {
    if (exclusive && running > 0) return;
    hooks.setError(null);
    running += 1;
    hooks.setBusy(true);
    try {
      await fn();
    } catch (e) {
      hooks.setError(e);
    } finally {
      running -= 1;
      // a second action started meanwhile keeps the page busy until it settles too
      hooks.setBusy(running > 0);
    }
  };
}
