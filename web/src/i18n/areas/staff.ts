// Staff sign-in (components/StaffLogin.vue): the form of the agent desk, the review pages and
// the wallboard, and the errors of POST /api/auth/login by their code.
import type { AreaMessages } from '@/i18n';

export default {
  'zh-CN': {
    staff: {
      signIn: '登录',
      username: '用户名',
      password: '密码',
      totpCode: '身份验证器应用中的验证码',
      totpHint: '六位数字，每三十秒更换一次。',
      otherAccount: '换一个账号',
    },
    errors: {
      second_factor_required: '此账号已绑定身份验证器：请输入六位验证码。',
      account_locked: '登录失败次数过多，账号暂时锁定。',
      account_locked_for: '登录失败次数过多，账号已锁定。请在 {minutes} 分钟后再试，或请督导人员解锁。',
    },
  },
  'zh-HK': {
    staff: {
      signIn: '登入',
      username: '用戶名稱',
      password: '密碼',
      totpCode: '身份驗證器應用程式中的驗證碼',
      totpHint: '六位數字，每三十秒更換一次。',
      otherAccount: '換一個帳戶',
    },
    errors: {
      second_factor_required: '此帳戶已綁定身份驗證器：請輸入六位驗證碼。',
      account_locked: '登入失敗次數過多，帳戶暫時鎖定。',
      account_locked_for: '登入失敗次數過多，帳戶已鎖定。請於 {minutes} 分鐘後再試，或請督導人員解鎖。',
    },
  },
  en: {
    staff: {
      signIn: 'Sign in',
      username: 'Username',
      password: 'Password',
      totpCode: 'Code from your authenticator app',
      totpHint: 'Six digits; a new code appears every 30 seconds.',
      otherAccount: 'Use another account',
    },
    errors: {
      second_factor_required: 'This account has an authenticator: enter its six-digit code.',
      account_locked: 'Too many failed sign-ins: the account is locked for a while.',
      account_locked_for: 'Too many failed sign-ins: the account is locked. Try again in {minutes} min, or ask a supervisor to unlock it.',
    },
  },
  pt: {
    staff: {
      signIn: 'Entrar',
      username: 'Nome de Utilizador',
      password: 'Palavra-passe',
      totpCode: 'Código da aplicação de autenticação',
      totpHint: 'Seis algarismos; um novo código aparece a cada 30 segundos.',
      otherAccount: 'Usar outra conta',
    },
    errors: {
      second_factor_required: 'Esta conta tem um autenticador: indique o código de seis algarismos.',
      account_locked: 'Demasiadas tentativas falhadas: a conta está bloqueada por algum tempo.',
      account_locked_for: 'Demasiadas tentativas falhadas: a conta está bloqueada. Tente de novo dentro de {minutes} min, ou peça a um supervisor que a desbloqueie.',
    },
  },
} satisfies AreaMessages;
