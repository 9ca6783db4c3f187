// A component's own actions (core/action.ts): its busy flag and the error it shows, as refs.
import { ref, shallowRef } from 'vue';
import { actionRunner, type ActionOptions } from '@/core/action';
import { asApiError, type ApiError } from '@/core/errors';

/** `busy` while an action runs, `error` what the last one threw (shown by its code through
 * the i18n error catalog), `action(fn)` to run one. */
export function useAction(options: ActionOptions = {}) {
  const busy = ref(false);
  const error = shallowRef<ApiError | null>(null);
  const action = actionRunner({ setBusy: (on) => (busy.value = on), setError: (e) => (error.value = e ? asApiError(e) : null) }, options);
  return { busy, error, action };
}
