import { describe, expect, it } from 'vitest';
import { actionRunner, type ActionOptions } from '@/core/action';

function harness(options?: ActionOptions) {
  const seen = { busy: [] as boolean[], errors: [] as unknown[] };
  const action = actionRunner({ setBusy: (on) => seen.busy.push(on), setError: (e) => seen.errors.push(e) }, options);
  return { action, seen };
}

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('actionRunner (a page action: busy flag and error capture)', () => {
  it('clears the error, is busy while the action runs, not after', async () => {
    const { action, seen } = harness();
    const d = deferred();
    const done = action(() => d.promise);
    expect(seen.errors).toEqual([null]);
    expect(seen.busy).toEqual([true]);
    d.resolve();
    await done;
    expect(seen.busy).toEqual([true, false]);
    expect(seen.errors).toEqual([null]);
  });

  it('hands what the action throws to setError and never rejects', async () => {
    const { action, seen } = harness();
    const boom = new Error('boom');
    await expect(action(() => Promise.reject(boom))).resolves.toBeUndefined();
    await expect(
      action(() => {
        throw new TypeError('sync');
      }),
    ).resolves.toBeUndefined();
    expect(seen.errors[1]).toBe(boom);
    expect((seen.errors[3] as Error).name).toBe('TypeError');
    expect(seen.busy.at(-1)).toBe(false);
  });

  it('stays busy until the last of two overlapping actions settles', async () => {
    const { action, seen } = harness();
    const first = deferred();
    const second = deferred();
    const a = action(() => first.promise);
    const b = action(() => second.promise);
    first.reject(new Error('first failed'));
    await a;
    expect(seen.busy.at(-1)).toBe(true); // the second still runs
    second.resolve();
    await b;
    expect(seen.busy.at(-1)).toBe(false);
  });

  it('runs a plain (non-async) function', async () => {
    const { action, seen } = harness();
    let ran = false;
    await action(() => {
      ran = true;
    });
    expect(ran).toBe(true);
    expect(seen.busy).toEqual([true, false]);
  });
});

describe('actionRunner { exclusive: true } (a second click while an action runs is dropped)', () => {
  it('does not run an action asked for while another runs, and leaves busy and the error alone', async () => {
    const { action, seen } = harness({ exclusive: true });
    const first = deferred();
    let secondRan = false;
    const a = action(() => first.promise);
    const b = action(() => {
      secondRan = true;
    });
    await b; // settles at once, without running
    expect(secondRan).toBe(false);
    expect(seen.busy).toEqual([true]);
    expect(seen.errors).toEqual([null]);
    first.reject(new Error('first failed'));
    await a;
    expect(seen.busy).toEqual([true, false]);
    expect((seen.errors[1] as Error).message).toBe('first failed');
  });

  it('runs the next action once the running one has settled, failed or not', async () => {
    const { action, seen } = harness({ exclusive: true });
    await action(() => Promise.reject(new Error('boom')));
    let ran = 0;
    await action(() => {
      ran += 1;
    });
    await action(() => {
      ran += 1;
    });
    expect(ran).toBe(2);
    expect(seen.errors.at(-1)).toBeNull();
    expect(seen.busy.at(-1)).toBe(false);
  });

  it('drops only while running: the default runner runs overlapping actions', async () => {
    const { action } = harness();
    const first = deferred();
    let secondRan = false;
    const a = action(() => first.promise);
    await action(() => {
      secondRan = true;
    });
    expect(secondRan).toBe(true);
    first.resolve();
    await a;
  });
});
