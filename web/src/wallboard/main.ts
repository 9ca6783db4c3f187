// The supervisor wallboard entry (/wallboard).
import { createApp } from 'vue';
import { createPinia } from 'pinia';
import '@/design/tokens.css';
import '@/design/base.css';
import { makeI18n } from '@/i18n';
import WallboardApp from './WallboardApp.vue';

createApp(WallboardApp).use(createPinia()).use(makeI18n()).mount('#app');
