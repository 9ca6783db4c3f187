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
      "history": "账号审计记录",
      "historyShow": "查看审计记录",
      "historyMore": "更早的记录",
      "historyEmpty": "没有记录。",
      "historyBy": "操作人",
      "historyWhat": "事项",
      "historyAt": "时间",
      "historyDetail": "详情",
      "kind": {
        "person_disabled": "停用账号",
        "person_enabled": "重新启用",
        "person_looked_up": "按证件查找",
        "person_access_read": "查看账号",
        "identity_audit_read": "查看审计记录",
        "kiosk_registered": "登记自助终端",
        "kiosk_revoked": "吊销自助终端",
        "staff_locked": "员工账号锁定",
        "staff_unlocked": "员工账号解锁",
        "step_up_required": "要求重新核验身份",
        "step_up_done": "已重新核验身份",
        "step_up_refused": "重新核验被拒绝"
      },
      "outcome": {
        "found": "找到",
        "not_found": "未找到",
        "invalid_id": "号码无效"
      },
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
      "history": "帳戶審計記錄",
      "historyShow": "查看審計記錄",
      "historyMore": "較早的記錄",
      "historyEmpty": "沒有記錄。",
      "historyBy": "操作人",
      "historyWhat": "事項",
      "historyAt": "時間",
      "historyDetail": "詳情",
      "kind": {
        "person_disabled": "停用帳戶",
        "person_enabled": "重新啟用",
        "person_looked_up": "按證件查找",
        "person_access_read": "查看帳戶",
        "identity_audit_read": "查看審計記錄",
        "kiosk_registered": "登記自助終端機",
        "kiosk_revoked": "撤銷自助終端機",
        "staff_locked": "員工帳戶鎖定",
        "staff_unlocked": "員工帳戶解鎖",
        "step_up_required": "要求重新核實身份",
        "step_up_done": "已重新核實身份",
        "step_up_refused": "重新核實被拒絕"
      },
      "outcome": {
        "found": "找到",
        "not_found": "找不到",
        "invalid_id": "號碼無效"
      },
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
      "history": "Audit trail",
      "historyShow": "Show the audit trail",
      "historyMore": "Older entries",
      "historyEmpty": "No entries.",
      "historyBy": "By",
      "historyWhat": "What",
      "historyAt": "When",
      "historyDetail": "Details",
      "kind": {
        "person_disabled": "Account disabled",
        "person_enabled": "Account enabled",
        "person_looked_up": "Looked up by document",
        "person_access_read": "Account viewed",
        "identity_audit_read": "Audit trail viewed",
        "kiosk_registered": "Kiosk registered",
        "kiosk_revoked": "Kiosk revoked",
        "staff_locked": "Staff account locked",
        "staff_unlocked": "Staff account unlocked",
        "step_up_required": "Fresh sign-in asked for",
        "step_up_done": "Fresh sign-in done",
        "step_up_refused": "Fresh sign-in refused"
      },
      "outcome": {
        "found": "found",
        "not_found": "not found",
        "invalid_id": "invalid number"
      },
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
      "history": "Registo de auditoria",
      "historyShow": "Ver o registo de auditoria",
      "historyMore": "Entradas anteriores",
      "historyEmpty": "Sem entradas.",
      "historyBy": "Por",
      "historyWhat": "O quê",
      "historyAt": "Quando",
      "historyDetail": "Detalhes",
      "kind": {
        "person_disabled": "Conta desativada",
        "person_enabled": "Conta reativada",
        "person_looked_up": "Procurado por documento",
        "person_access_read": "Conta consultada",
        "identity_audit_read": "Registo de auditoria consultado",
        "kiosk_registered": "Quiosque registado",
        "kiosk_revoked": "Quiosque revogado",
        "staff_locked": "Conta de funcionário bloqueada",
        "staff_unlocked": "Conta de funcionário desbloqueada",
        "step_up_required": "Nova verificação pedida",
        "step_up_done": "Nova verificação feita",
        "step_up_refused": "Nova verificação recusada"
      },
      "outcome": {
        "found": "encontrado",
        "not_found": "não encontrado",
        "invalid_id": "número inválido"
      },
      "errors": {
        "needDocument": "Introduza o número do documento.",
        "needReason": "Indique um motivo.",
        "not_found": "Esta pessoa não está no registo.",
        "invalid_id": "O número do documento tem formato ou dígito de controlo errado: verifique-o."
      }
    }
  }
} satisfies AreaMessages;
