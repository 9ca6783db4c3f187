// Agent assist on the desk (web/src/components/AgentAssist.vue): the four languages side by side.
import type { AreaMessages } from '@/i18n';

export default {
  'zh-CN': {
    assist: {
      title: '知识库建议',
      search: '查找知识库（按纳税人的问题，或输入关键词）',
      go: '查找',
      loading: '正在查找…',
      none: '知识库中没有找到合适的条目',
      send: '把这条答复发到聊天',
      sent: '已发到聊天',
    },
  },
  'zh-HK': {
    assist: {
      title: '知識庫建議',
      search: '查找知識庫（按納稅人的問題，或輸入關鍵詞）',
      go: '查找',
      loading: '正在查找…',
      none: '知識庫中沒有找到合適的條目',
      send: '把這條答覆發到聊天',
      sent: '已發到聊天',
    },
  },
  en: {
    assist: {
      title: 'Knowledge base suggestions',
      search: "Search the knowledge base (the taxpayer's question, or your own words)",
      go: 'Search',
      loading: 'Searching…',
      none: 'No suitable entry in the knowledge base',
      send: 'Send this answer in the chat',
      sent: 'Sent in the chat',
    },
  },
  pt: {
    assist: {
      title: 'Sugestões da base de conhecimento',
      search: 'Pesquisar na base de conhecimento (a pergunta do contribuinte ou as suas palavras)',
      go: 'Pesquisar',
      loading: 'A pesquisar…',
      none: 'Nenhuma entrada adequada na base de conhecimento',
      send: 'Enviar esta resposta no chat',
      sent: 'Enviada no chat',
    },
  },
} satisfies AreaMessages;
