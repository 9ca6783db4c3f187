// The taxpayer entry: Vue + Pinia + vue-i18n over the design system.
import { createApp } from 'vue';
import { createPinia } from 'pinia';
import '@/design/tokens.css';
import '@/design/base.css';
import './taxpayer.css';
import { makeI18n } from '@/i18n';
import TaxpayerApp from './TaxpayerApp.vue';

createApp(TaxpayerApp).use(createPinia()).use(makeI18n()).mount('#app');
