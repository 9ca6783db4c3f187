// Screen share behind a composable: the framework-free ScreenShare (core/screen.ts) bound to
// the call's socket (again on a new socket), the remote screen's stream from each new Call,
// and the Vue state the share panel renders. The call's own composable is not changed: this
// follows its `socket` and `call` refs.
import { markRaw, ref, shallowRef, watch } from 'vue';
import { useAction } from '@/composables/useAction';
import { vtax } from '@/core/hook';
import { ScreenShare, canShareScreen, type ScreenSocket, type ScreenView } from '@/core/screen';
import type { UseCall } from './useCall';

export function useScreen(call: UseCall) {
  const view = ref<ScreenView>({ sharing: false, peerSharing: false, peerRole: null, pointer: null, pointsSent: 0 });
  const remoteScreen = shallowRef<MediaStream | null>(null);
  const localScreen = shallowRef<MediaStream | null>(null);
  const { busy, error, action } = useAction();
  const available = canShareScreen();
  const core = new ScreenShare({
    getCall: () => call.call.value,
    onChange: (v) => {
      view.value = v;
      localScreen.value = core.localStream;
      vtax.screen = { ...v, remoteScreen: Boolean(remoteScreen.value) }; // for the browser tests
    },
    onError: (e) => (error.value = e),
  });
  vtax.screen = { ...view.value, remoteScreen: false };

  watch(
    () => call.socket.value,
    (s) => {
      if (s) core.bind(s as unknown as ScreenSocket);
    },
    { immediate: true },
  );
  watch(
    () => call.call.value,
    (c, old) => {
      if (old && old !== c) core.reset();
      remoteScreen.value = null;
      if (!c) return;
      c.onRemoteScreen = (stream) => {
        remoteScreen.value = stream;
        vtax.screen = { ...view.value, remoteScreen: true };
      };
      if (c.remoteScreen) remoteScreen.value = c.remoteScreen;
      if (c.info.freshResume) void core.afterReload();
    },
    { immediate: true },
  );

  /** Start or stop sharing; what fails is in `error`. */
  function toggle(): Promise<void> {
    return action(() => (view.value.sharing ? core.stop() : core.start()));
  }

  return markRaw({ view, remoteScreen, localScreen, error, busy, available, toggle, point: core.point.bind(core), core });
}

export type UseScreen = ReturnType<typeof useScreen>;
