// The kiosk entry (/kiosk): the taxpayer flow in kiosk mode (touch-first, on-screen keypad,
// privacy note before the camera, idle wipe, elderly mode).
import { createApp } from 'vue';
import { createPinia } from 'pinia';
import '@/design/tokens.css';
import '@/design/base.css';
import '@/taxpayer/taxpayer.css';
import { makeI18n } from '@/i18n';
import TaxpayerApp from '@/taxpayer/TaxpayerApp.vue';

document.documentElement.dataset.mode = 'kiosk';
createApp(TaxpayerApp, { kiosk: true }).use(createPinia()).use(makeI18n()).mount('#app');
