// Step-up (docs/identity.md, "Step-up"): risky business items and signing a delivery receipt
// need a fresh sign-in at a higher level; "verify again" goes to the identity platform and
// retries the step. `errors.step_up_required` is in signin.ts.
import type { AreaMessages } from '@/i18n';

export default {
  'zh-CN': {
    stepUp: {
      title: '请再次验证身份',
      forItem: '这项业务风险较高，需要您刚刚完成的高级别身份认证（如刷脸）。验证后会自动继续办理。',
      forReceipt: '签收文书需要您刚刚完成的高级别身份认证（如刷脸）。验证后会自动签收。',
      verify: '再次验证',
      cancel: '暂不办理',
      unavailable: '这里无法进行高级别认证。请用电子税务局账号登录，或到办税服务厅的自助终端办理。',
      item: '具体业务（可不选）',
      itemNone: '不确定 / 其他',
      itemRisky: '{name}（需再次验证身份）',
      acknowledged: '身份已验证，文书已签收。',
    },
    errors: {
      step_up_refused: '再次验证的不是您本人，未予通过。请用您自己的账号验证。',
    },
  },
  'zh-HK': {
    stepUp: {
      title: '請再次驗證身份',
      forItem: '這項業務風險較高，需要您剛剛完成的高級別身份認證（如刷臉）。驗證後會自動繼續辦理。',
      forReceipt: '簽收文書需要您剛剛完成的高級別身份認證（如刷臉）。驗證後會自動簽收。',
      verify: '再次驗證',
      cancel: '暫不辦理',
      unavailable: '這裏無法進行高級別認證。請用電子稅務局帳號登入，或到辦稅服務廳的自助終端辦理。',
      item: '具體業務（可不選）',
      itemNone: '不確定 / 其他',
      itemRisky: '{name}（需再次驗證身份）',
      acknowledged: '身份已驗證，文書已簽收。',
    },
    errors: {
      step_up_refused: '再次驗證的不是您本人，未予通過。請用您自己的帳號驗證。',
    },
  },
  en: {
    stepUp: {
      title: 'Please verify your identity again',
      forItem: 'This matter is sensitive: it needs a recent high-level identity check (such as a face match). Once verified, your request continues by itself.',
      forReceipt: 'Signing for a document needs a recent high-level identity check (such as a face match). Once verified, the receipt is signed by itself.',
      verify: 'Verify again',
      cancel: 'Not now',
      unavailable: 'A high-level check is not available here. Sign in with your e-tax account, or use a self-service kiosk at a tax office.',
      item: 'Matter (optional)',
      itemNone: 'Not sure / other',
      itemRisky: '{name} (needs verifying again)',
      acknowledged: 'Identity verified: the document is signed for.',
    },
    errors: {
      step_up_refused: 'The new sign-in was of another person and was refused. Verify with your own account.',
    },
  },
  pt: {
    stepUp: {
      title: 'Confirme novamente a sua identidade',
      forItem: 'Este assunto é sensível: exige uma verificação de identidade recente de nível elevado (por exemplo, reconhecimento facial). Depois de verificada, o pedido continua sozinho.',
      forReceipt: 'Assinar a receção de um documento exige uma verificação de identidade recente de nível elevado (por exemplo, reconhecimento facial). Depois de verificada, a receção é assinada sozinha.',
      verify: 'Verificar novamente',
      cancel: 'Agora não',
      unavailable: 'Aqui não é possível uma verificação de nível elevado. Entre com a sua conta da repartição eletrónica ou use um quiosque numa repartição de finanças.',
      item: 'Assunto (opcional)',
      itemNone: 'Não sei / outro',
      itemRisky: '{name} (exige nova verificação)',
      acknowledged: 'Identidade verificada: a receção do documento foi assinada.',
    },
    errors: {
      step_up_refused: 'A nova autenticação era de outra pessoa e foi recusada. Verifique com a sua própria conta.',
    },
  },
} satisfies AreaMessages;
