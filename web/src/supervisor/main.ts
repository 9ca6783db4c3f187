// The supervisor's review entry (/supervisor): sessions, their whole loop, quality, flags,
// follow-ups, CSV, KPIs with charts, the knowledge base.
import { createApp } from 'vue';
import { createPinia } from 'pinia';
import '@/design/tokens.css';
import '@/design/base.css';
import './supervisor.css';
import { makeI18n } from '@/i18n';
import SupervisorApp from './SupervisorApp.vue';

createApp(SupervisorApp).use(createPinia()).use(makeI18n()).mount('#app');
