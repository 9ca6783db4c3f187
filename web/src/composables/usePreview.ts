// A fetched material shown on the page (a picture here, a PDF opened in a new tab) through an
// object URL: one at a time, the URL revoked when another replaces it or it is closed.
import { shallowRef } from 'vue';

export function usePreview<M>() {
  const preview = shallowRef<{ m: M; url: string } | null>(null);

  function close(): void {
    if (preview.value) URL.revokeObjectURL(preview.value.url);
    preview.value = null;
  }

  /** Show `blob` (the bytes of `m`, already checked) in place of what was shown. */
  function show(m: M, blob: Blob): void {
    close();
    preview.value = { m, url: URL.createObjectURL(blob) };
  }

  return { preview, show, close };
}
