// Where a session came from, in the supervisor's session detail (web/src/supervisor/
// SessionDetail.vue): the enterprise the person acted for, in the four page languages.
import type { AreaMessages } from '@/i18n';

export default {
  'zh-CN': { origin: { enterprise: '代表企业' } },
  'zh-HK': { origin: { enterprise: '代表企業' } },
  en: { origin: { enterprise: 'Acting for' } },
  pt: { origin: { enterprise: 'Em nome de' } },
} satisfies AreaMessages;
