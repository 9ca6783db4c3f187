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
      factor: {
        title: '身份验证器',
        intro: '绑定身份验证器应用后，每次登录除密码外还要输入应用中的六位验证码。',
        setUp: '绑定身份验证器应用',
        addKey: '在身份验证器应用中添加账号（基于时间），输入下面的设置密钥：',
        keyLabel: '设置密钥',
        keyHint: '密钥只显示这一次，请勿告诉他人或截图保存。',
        turnOn: '启用',
        cancel: '取消',
        on: '身份验证器已启用：每次登录都会要求输入验证码。',
      },
    },
    errors: {
      second_factor_required: '需要身份验证器的六位验证码：登录时输入；打开录像和导出表格也需要用验证码登录。',
      account_locked: '登录失败次数过多，账号暂时锁定。',
      account_locked_for: '登录失败次数过多，账号已锁定。请在 {minutes} 分钟后再试，或请督导人员解锁。',
      totpWrongCode: '验证码不正确，请输入应用中显示的下一个验证码。',
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
      factor: {
        title: '身份驗證器',
        intro: '綁定身份驗證器應用程式後，每次登入除密碼外，亦須輸入應用程式中的六位驗證碼。',
        setUp: '綁定身份驗證器應用程式',
        addKey: '在身份驗證器應用程式中新增帳戶（以時間為準），並輸入以下設定密鑰：',
        keyLabel: '設定密鑰',
        keyHint: '密鑰只會顯示這一次，請勿告訴他人或截圖保存。',
        turnOn: '啟用',
        cancel: '取消',
        on: '身份驗證器已啟用：每次登入都會要求輸入驗證碼。',
      },
    },
    errors: {
      second_factor_required: '需要身份驗證器的六位驗證碼：登入時輸入；開啟錄影和匯出表格亦需要以驗證碼登入。',
      account_locked: '登入失敗次數過多，帳戶暫時鎖定。',
      account_locked_for: '登入失敗次數過多，帳戶已鎖定。請於 {minutes} 分鐘後再試，或請督導人員解鎖。',
      totpWrongCode: '驗證碼不正確，請輸入應用程式中顯示的下一個驗證碼。',
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
      factor: {
        title: 'Authenticator app',
        intro: 'With an authenticator app, each sign-in asks for its six-digit code as well as your password.',
        setUp: 'Set up an authenticator app',
        addKey: 'In the authenticator app, add an account (time-based) with this setup key:',
        keyLabel: 'Setup key',
        keyHint: 'The key is shown only this once. Do not share it or keep a screenshot of it.',
        turnOn: 'Turn on',
        cancel: 'Cancel',
        on: 'Your authenticator app is on: each sign-in asks for its code.',
      },
    },
    errors: {
      second_factor_required: "Your authenticator's six-digit code is needed: enter it at sign-in; recordings and exports open only after a sign-in with it.",
      account_locked: 'Too many failed sign-ins: the account is locked for a while.',
      account_locked_for: 'Too many failed sign-ins: the account is locked. Try again in {minutes} min, or ask a supervisor to unlock it.',
      totpWrongCode: 'The code does not match: enter the next code your app shows.',
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
      factor: {
        title: 'Aplicação de autenticação',
        intro: 'Com uma aplicação de autenticação, cada entrada pede, além da palavra-passe, o código de seis algarismos da aplicação.',
        setUp: 'Configurar uma aplicação de autenticação',
        addKey: 'Na aplicação de autenticação, adicione uma conta (baseada no tempo) com esta chave de configuração:',
        keyLabel: 'Chave de configuração',
        keyHint: 'A chave só é mostrada esta vez. Não a partilhe nem guarde uma captura de ecrã.',
        turnOn: 'Ativar',
        cancel: 'Cancelar',
        on: 'A sua aplicação de autenticação está ativa: cada entrada pede o código.',
      },
    },
    errors: {
      second_factor_required: 'É preciso o código de seis algarismos do autenticador: indique-o ao entrar; as gravações e as exportações só abrem depois de entrar com ele.',
      account_locked: 'Demasiadas tentativas falhadas: a conta está bloqueada por algum tempo.',
      account_locked_for: 'Demasiadas tentativas falhadas: a conta está bloqueada. Tente de novo dentro de {minutes} min, ou peça a um supervisor que a desbloqueie.',
      totpWrongCode: 'O código não corresponde: indique o próximo código que a aplicação mostrar.',
    },
  },
} satisfies AreaMessages;
