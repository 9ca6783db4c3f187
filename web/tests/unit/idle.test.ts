import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defineComponent, h, nextTick } from 'vue';
import { mount } from '@vue/test-utils';
import { useIdle } from '@/composables/useIdle';

function harness(active: { value: boolean }, onWipe: () => void) {
  let api: ReturnType<typeof useIdle> | null = null;
  const C = defineComponent({
    setup() {
      api = useIdle({ timeoutS: 2, warnS: 3, active: () => active.value, onWipe });
      return () => h('div');
    },
  });
  const w = mount(C, { attachTo: document.body });
  return { w, idle: () => api as unknown as ReturnType<typeof useIdle> };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('useIdle (the kiosk idle wipe)', () => {
  it('warns with a countdown after the timeout, then wipes', async () => {
    const wipe = vi.fn();
    const { w, idle } = harness({ value: true }, wipe);
    await vi.advanceTimersByTimeAsync(1900);
    expect(idle().warning.value).toBe(false);
    await vi.advanceTimersByTimeAsync(600);
    expect(idle().warning.value).toBe(true);
    expect(idle().left.value).toBe(3);
    await vi.advanceTimersByTimeAsync(2000);
    expect(idle().left.value).toBe(1);
    expect(wipe).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1000);
    expect(wipe).toHaveBeenCalledTimes(1);
    w.unmount();
  });

  it('a touch during the warning closes it and starts over', async () => {
    const wipe = vi.fn();
    const { w, idle } = harness({ value: true }, wipe);
    await vi.advanceTimersByTimeAsync(2500);
    expect(idle().warning.value).toBe(true);
    window.dispatchEvent(new Event('pointerdown'));
    await vi.advanceTimersByTimeAsync(300);
    await nextTick();
    expect(idle().warning.value).toBe(false);
    await vi.advanceTimersByTimeAsync(4000);
    expect(wipe).not.toHaveBeenCalled();
    w.unmount();
  });

  it('never wipes during a call', async () => {
    const wipe = vi.fn();
    const active = { value: false };
    const { w, idle } = harness(active, wipe);
    await vi.advanceTimersByTimeAsync(20000);
    expect(idle().warning.value).toBe(false);
    expect(wipe).not.toHaveBeenCalled();
    active.value = true; // the call ended: the wait starts from now
    await vi.advanceTimersByTimeAsync(1500);
    expect(idle().warning.value).toBe(false);
    w.unmount();
  });
});
