// People's access on the supervisor pages (web/src/supervisor/PeoplePanel.vue): find a person by
// document or from a session, disable or enable their sign-in with a reason.
import type { AreaMessages } from '@/i18n';

export default {
  "zh-CN": {
    "people": {
      "title": "纳税人账号",
      "intro": "停用后，此人所有登录立即失效，正在进行的连接被断开，在重新启用前无法以任何方式登录。每次操作都会连同原因记入审计。",
      "documentType": "证件类型",
      "document": "证件号码",
      "find": "查找",
      "manage": "管理账号",
      "manageOf": "管理账号：{name}",
      "docType": {
        "resident_id": "居民身份证",
        "residence_permit": "港澳台居民居住证",
        "travel_permit": "港澳居民来往内地通行证",
        "passport": "护照"
      },
      "name": "姓名",
      "state": "状态",
      "enabled": "已启用",
      "disabled": "已停用",
      "lastChange": "最近一次变更",
      "changeLine": "{state}，{at}，操作人 {by}：{reason}",
      "byOperator": "运维人员 {name}（命令行）",
      "never": "从未停用",
      "reason": "原因",
      "reasonHint": "必填，最多 500 字，记入审计。",
      "disable": "停用账号",
      "enable": "重新启用",
      "doneDisabled": "已停用 {name} 的账号。",
      "doneEnabled": "已重新启用 {name} 的账号，此人需要重新登录。",
      "errors": {
        "needDocument": "请输入证件号码。",
        "needReason": "请填写原因。",
        "not_found": "登记库中没有此人。",
        "invalid_id": "证件号码格式或校验位不正确，请核对。"
      }
    }
  },
  "zh-HK": {
    "people": {
      "title": "納稅人帳戶",
      "intro": "停用後，此人所有登入即時失效，進行中的連線會被中斷，在重新啟用前無法以任何方式登入。每次操作都會連同原因記入審計。",
      "documentType": "證件類型",
      "document": "證件號碼",
      "find": "查找",
      "manage": "管理帳戶",
      "manageOf": "管理帳戶：{name}",
      "docType": {
        "resident_id": "居民身份證",
        "residence_permit": "港澳台居民居住證",
        "travel_permit": "港澳居民來往內地通行證",
        "passport": "護照"
      },
      "name": "姓名",
      "state": "狀態",
      "enabled": "已啟用",
      "disabled": "已停用",
      "lastChange": "最近一次變更",
      "changeLine": "{state}，{at}，操作人 {by}：{reason}",
      "byOperator": "運維人員 {name}（命令列）",
      "never": "從未停用",
      "reason": "原因",
      "reasonHint": "必填，最多 500 字，記入審計。",
      "disable": "停用帳戶",
      "enable": "重新啟用",
      "doneDisabled": "已停用 {name} 的帳戶。",
      "doneEnabled": "已重新啟用 {name} 的帳戶，此人需要重新登入。",
      "errors": {
        "needDocument": "請輸入證件號碼。",
        "needReason": "請填寫原因。",
        "not_found": "登記庫中沒有此人。",
        "invalid_id": "證件號碼格式或校驗位不正確，請核對。"
      }
    }
  },
  "en": {
    "people": {
      "title": "Taxpayers' accounts",
      "intro": "Disabling ends every sign-in of the person at once and cuts their open connections; they cannot sign in by any method until enabled again. Each change is audited with its reason.",
      "documentType": "Document type",
      "document": "Document number",
      "find": "Find",
      "manage": "Manage account",
      "manageOf": "Manage account: {name}",
      "docType": {
        "resident_id": "Resident ID card",
        "residence_permit": "Residence permit (Hong Kong, Macau, Taiwan residents)",
        "travel_permit": "Mainland travel permit (Hong Kong, Macau residents)",
        "passport": "Passport"
      },
      "name": "Name",
      "state": "State",
      "enabled": "Enabled",
      "disabled": "Disabled",
      "lastChange": "Latest change",
      "changeLine": "{state}, {at}, by {by}: {reason}",
      "byOperator": "operator {name} (command line)",
      "never": "Never disabled",
      "reason": "Reason",
      "reasonHint": "Required, at most 500 characters; kept in the audit.",
      "disable": "Disable account",
      "enable": "Enable again",
      "doneDisabled": "The account of {name} is disabled.",
      "doneEnabled": "The account of {name} is enabled again; they sign in anew.",
      "errors": {
        "needDocument": "Enter the document number.",
        "needReason": "Give a reason.",
        "not_found": "This person is not in the registry.",
        "invalid_id": "The document number has a wrong format or check character: check it."
      }
    }
  },
  "pt": {
    "people": {
      "title": "Contas dos contribuintes",
      "intro": "Desativar termina de imediato todas as sessões da pessoa e corta as ligações abertas; não poderá entrar por nenhum meio até ser reativada. Cada alteração fica na auditoria com o motivo.",
      "documentType": "Tipo de documento",
      "document": "Número do documento",
      "find": "Procurar",
      "manage": "Gerir conta",
      "manageOf": "Gerir conta: {name}",
      "docType": {
        "resident_id": "Bilhete de identidade de residente",
        "residence_permit": "Autorização de residência (residentes de Hong Kong, Macau, Taiwan)",
        "travel_permit": "Salvo-conduto para o Interior (residentes de Hong Kong, Macau)",
        "passport": "Passaporte"
      },
      "name": "Nome",
      "state": "Estado",
      "enabled": "Ativa",
      "disabled": "Desativada",
      "lastChange": "Última alteração",
      "changeLine": "{state}, {at}, por {by}: {reason}",
      "byOperator": "operador {name} (linha de comandos)",
      "never": "Nunca desativada",
      "reason": "Motivo",
      "reasonHint": "Obrigatório, até 500 caracteres; fica na auditoria.",
      "disable": "Desativar conta",
      "enable": "Reativar",
      "doneDisabled": "A conta de {name} foi desativada.",
      "doneEnabled": "A conta de {name} foi reativada; a pessoa tem de entrar de novo.",
      "errors": {
        "needDocument": "Introduza o número do documento.",
        "needReason": "Indique um motivo.",
        "not_found": "Esta pessoa não está no registo.",
        "invalid_id": "O número do documento tem formato ou dígito de controlo errado: verifique-o."
      }
    }
  }
} satisfies AreaMessages;
