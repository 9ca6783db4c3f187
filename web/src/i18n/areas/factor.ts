// Setting up a staff member's authenticator (TOTP) on the supervisor page
// (web/src/supervisor/SecondFactor.vue), in the four page languages.
import type { AreaMessages } from '@/i18n';

export default {
  "zh-CN": {
    "factor": {
      "title": "身份验证器",
      "needed": "打开录像和导出表格前，须使用身份验证器的验证码登录。本次登录未使用验证码。",
      "setUp": "设置身份验证器",
      "scan": "用手机上的身份验证器应用（任何支持 TOTP 的应用）扫描二维码，或手动输入下面的密钥。",
      "qr": "身份验证器二维码",
      "key": "密钥",
      "open": "在本机的身份验证器应用中打开",
      "code": "应用显示的六位验证码",
      "confirm": "启用",
      "cancel": "取消",
      "on": "身份验证器已启用。请退出后用验证码重新登录，即可打开录像和导出表格。",
      "signInAgain": "用验证码重新登录",
      "once": "密钥只显示这一次，请勿截图或告诉他人。"
    }
  },
  "zh-HK": {
    "factor": {
      "title": "身份驗證器",
      "needed": "開啟錄影和匯出表格前，須以身份驗證器的驗證碼登入。今次登入未有使用驗證碼。",
      "setUp": "設定身份驗證器",
      "scan": "以手機上的身份驗證器應用程式（任何支援 TOTP 的程式）掃描二維碼，或手動輸入下面的密鑰。",
      "qr": "身份驗證器二維碼",
      "key": "密鑰",
      "open": "在本機的身份驗證器應用程式中開啟",
      "code": "應用程式顯示的六位驗證碼",
      "confirm": "啟用",
      "cancel": "取消",
      "on": "身份驗證器已啟用。請登出後以驗證碼重新登入，便可開啟錄影和匯出表格。",
      "signInAgain": "以驗證碼重新登入",
      "once": "密鑰只會顯示這一次，請勿截圖或告訴他人。"
    }
  },
  "en": {
    "factor": {
      "title": "Authenticator",
      "needed": "Recordings and the table export open only after a sign-in with your authenticator's code. This sign-in did not use one.",
      "setUp": "Set up an authenticator",
      "scan": "Scan the QR code with the authenticator app on your phone (any app for TOTP codes), or type the key below into it.",
      "qr": "QR code for the authenticator",
      "key": "Key",
      "open": "Open in an authenticator app on this device",
      "code": "The six-digit code the app shows",
      "confirm": "Turn on",
      "cancel": "Cancel",
      "on": "The authenticator is on. Sign out and sign in again with a code to open recordings and exports.",
      "signInAgain": "Sign in again with a code",
      "once": "The key is shown only this once: do not take a screenshot of it or tell anyone."
    }
  },
  "pt": {
    "factor": {
      "title": "Autenticador",
      "needed": "As gravações e a exportação da tabela só abrem depois de entrar com o código do autenticador. Esta entrada não o usou.",
      "setUp": "Configurar um autenticador",
      "scan": "Leia o código QR com a aplicação de autenticação do telemóvel (qualquer aplicação de códigos TOTP), ou escreva nela a chave abaixo.",
      "qr": "Código QR para o autenticador",
      "key": "Chave",
      "open": "Abrir numa aplicação de autenticação deste dispositivo",
      "code": "O código de seis algarismos que a aplicação mostra",
      "confirm": "Ativar",
      "cancel": "Cancelar",
      "on": "O autenticador está ativo. Saia e volte a entrar com um código para abrir gravações e exportações.",
      "signInAgain": "Entrar de novo com um código",
      "once": "A chave só é mostrada esta vez: não faça captura de ecrã nem a diga a ninguém."
    }
  }
} satisfies AreaMessages;
