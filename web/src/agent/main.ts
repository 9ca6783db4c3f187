// The agent desk entry.
import { createApp } from 'vue';
import { createPinia } from 'pinia';
import '@/design/tokens.css';
import '@/design/base.css';
import './agent.css';
import { makeI18n } from '@/i18n';
import AgentApp from './AgentApp.vue';

createApp(AgentApp).use(createPinia()).use(makeI18n()).mount('#app');
