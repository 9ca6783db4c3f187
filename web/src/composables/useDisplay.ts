// Display options for the elderly and the low-sighted: large text and high contrast, on
// <html data-text="large" data-contrast="high">, remembered in localStorage.
import { ref, watch } from 'vue';

const KEY = 'vtax.display';

function load(): { largeText: boolean; highContrast: boolean } {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || '{}') as Record<string, unknown>;
    return { largeText: v.largeText === true, highContrast: v.highContrast === true };
  } catch {
    return { largeText: false, highContrast: false };
  }
}

const initial = load();
const largeText = ref(initial.largeText);
const highContrast = ref(initial.highContrast);

function apply(): void {
  const root = document.documentElement;
  if (largeText.value) root.dataset.text = 'large';
  else delete root.dataset.text;
  if (highContrast.value) root.dataset.contrast = 'high';
  else delete root.dataset.contrast;
  try {
    localStorage.setItem(KEY, JSON.stringify({ largeText: largeText.value, highContrast: highContrast.value }));
  } catch {
    /* no storage */
  }
}

watch([largeText, highContrast], apply);
if (typeof document !== 'undefined') apply();

export function useDisplay() {
  return { largeText, highContrast };
}
