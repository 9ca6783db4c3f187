// Why a supervisor without the authenticator's code cannot open recordings and exports, and
// the QR code of the set-up (web/src/components/StaffFactorSetup.vue), in the four languages.
import type { AreaMessages } from '@/i18n';

export default {
  "zh-CN": {
    "factor": {
      "needed": "打开录像和导出表格前，须使用身份验证器的验证码登录。本次登录未使用验证码。",
      "setUp": "设置身份验证器",
      "scan": "用手机上的身份验证器应用（任何生成动态验证码的应用）扫描二维码，或手动输入下面的密钥。",
      "qr": "身份验证器二维码",
      "open": "在本机的身份验证器应用中打开"
    }
  },
  "zh-HK": {
    "factor": {
      "needed": "開啟錄影和匯出表格前，須以身份驗證器的驗證碼登入。今次登入未有使用驗證碼。",
      "setUp": "設定身份驗證器",
      "scan": "以手機上的身份驗證器應用程式（任何產生動態驗證碼的程式）掃描二維碼，或手動輸入下面的密鑰。",
      "qr": "身份驗證器二維碼",
      "open": "在本機的身份驗證器應用程式中開啟"
    }
  },
  "en": {
    "factor": {
      "needed": "Recordings and the table export open only after a sign-in with your authenticator's code. This sign-in did not use one.",
      "setUp": "Set up an authenticator",
      "scan": "Scan the QR code with the authenticator app on your phone (any app for TOTP codes), or type the key below into it.",
      "qr": "QR code for the authenticator",
      "open": "Open in an authenticator app on this device"
    }
  },
  "pt": {
    "factor": {
      "needed": "As gravações e a exportação da tabela só abrem depois de entrar com o código do autenticador. Esta entrada não o usou.",
      "setUp": "Configurar um autenticador",
      "scan": "Leia o código QR com a aplicação de autenticação do telemóvel (qualquer aplicação de códigos TOTP), ou escreva nela a chave abaixo.",
      "qr": "Código QR para o autenticador",
      "open": "Abrir numa aplicação de autenticação deste dispositivo"
    }
  }
} satisfies AreaMessages;
