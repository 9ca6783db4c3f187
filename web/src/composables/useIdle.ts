// The kiosk's idle timer: after `timeoutS` without a touch, a key or input, a warning with a
// visible countdown of `warnS` seconds; then `onWipe` (the screen and the session data are
// cleared). Paused while `active()` is false (during a call).
import { onBeforeUnmount, onMounted, ref } from 'vue';

export interface IdleOptions {
  timeoutS: number;
  warnS: number;
  active: () => boolean;
  onWipe: () => void;
}

export function useIdle(o: IdleOptions) {
  const warning = ref(false);
  const left = ref(o.warnS);
  let last = Date.now();
  let timer: ReturnType<typeof setInterval> | undefined;
  const events = ['pointerdown', 'keydown', 'input', 'touchstart', 'wheel'] as const;

  /** Any touch restarts the wait (the warning closes at the next tick, after the click). */
  function touch(): void {
    last = Date.now();
  }

  function tick(): void {
    if (!o.active()) {
      last = Date.now();
      warning.value = false;
      return;
    }
    const idle = (Date.now() - last) / 1000;
    if (idle >= o.timeoutS + o.warnS) {
      warning.value = false;
      clearInterval(timer);
      o.onWipe();
    } else if (idle >= o.timeoutS) {
      warning.value = true;
      left.value = Math.ceil(o.timeoutS + o.warnS - idle);
    } else {
      warning.value = false;
    }
  }

  onMounted(() => {
    for (const e of events) window.addEventListener(e, touch, { capture: true, passive: true });
    timer = setInterval(tick, 250);
  });
  onBeforeUnmount(() => {
    for (const e of events) window.removeEventListener(e, touch, { capture: true });
    clearInterval(timer);
  });

  return { warning, left, stay: touch };
}
