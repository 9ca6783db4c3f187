// A user action on a page: the error of the last action is cleared, the page is busy while
// any action runs (buttons disable themselves), and what fails is shown instead of thrown.
// Framework-free: a store passes how to set its busy flag and its error.

export interface ActionHooks {
  /** true while at least one action runs */
  setBusy(on: boolean): void;
  /** null clears the shown error; anything else is what an action threw */
  setError(e: unknown): void;
}

export type Action = (fn: () => unknown) => Promise<void>;

/** The page's `action(fn)`: runs fn, marks busy until every started action has settled,
 * and hands a failure to setError (the returned promise never rejects). */
export function actionRunner(hooks: ActionHooks): Action {
  let running = 0;
  return async (fn) => {
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
