"""A document translated to the canonical model, and the problems found in documents.

Problem messages speak the three scripts of every page and Portuguese, Macao's other official
language (Art. 15); codes are stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.domain.errors import FieldProblem, Localized


@dataclass(frozen=True, slots=True)
class Decoded:
    """A native document translated to the canonical model, with its translation record.

    ``problems`` are what the codec found without having to stop (schema violations): the
    use case reports them together with the business-rule problems, all in one answer.
    """

    document: dict[str, Any]
    mapping_version: str
    problems: tuple[FieldProblem, ...] = ()


MESSAGES: dict[str, Localized] = {
    "required": Localized(
        "此欄位必須填寫", "此字段必须填写", "This field is required", "Este campo é obrigatório"
    ),
    "unknown_channel": Localized(
        "渠道須為 online、counter、kiosk 或 mobile",
        "渠道须为 online、counter、kiosk 或 mobile",
        "The channel is online, counter, kiosk or mobile",
        "O canal é online, counter, kiosk ou mobile",
    ),
    "channel_not_offered": Localized(
        "此事項不經此渠道辦理，可用渠道",
        "此事项不经此渠道办理，可用渠道",
        "The matter is not offered on this channel; it is offered on",
        "O assunto não é tratado por este canal; é tratado por",
    ),
    "wrong_pickup_code": Localized(
        "取件碼不正確",
        "取件码不正确",
        "The pickup code is not the one issued for this result",
        "O código de levantamento não é o emitido para este resultado",
    ),
    "legal_basis_required": Localized(
        "機構提交的申請須聲明傳送申請人個人資料的法律依據（GBA-Legal-Basis：法律及條文）",
        "机构提交的申请须声明传送申请人个人信息的法律依据（GBA-Legal-Basis：法律及条文）",
        "An agency's submission declares the legal basis on which it sends the applicant's "
        "personal information (GBA-Legal-Basis: the law and the article)",
        "A submissão de um serviço público declara o fundamento legal com que envia os dados "
        "pessoais do requerente (GBA-Legal-Basis: a lei e o artigo)",
    ),
    "legal_basis_twice": Localized(
        "法律依據只可聲明一次：標頭與文件所載不同",
        "法律依据只可声明一次：标头与文件所载不同",
        "The legal basis is declared once: the header and the document say different things",
        "O fundamento legal declara-se uma só vez: o cabeçalho e o documento dizem coisas "
        "diferentes",
    ),
    "inspected_document_not_in_application": Localized(
        "臨櫃查驗的身份證件不在申請人的證件之列",
        "临柜查验的身份证件不在申请人的证件之列",
        "The identity document inspected at the counter is not one of the applicant's documents",
        "O documento de identificação verificado no balcão não é um dos documentos do requerente",
    ),
    "unknown_matter": Localized(
        "沒有以此編碼生效的事項",
        "没有以此编码生效的事项",
        "No matter with this code is in force",
        "Não há nenhum assunto em vigor com este código",
    ),
    "invalid_date": Localized(
        "日期無效，應為 YYYY-MM-DD",
        "日期无效，应为 YYYY-MM-DD",
        "Not a valid date (YYYY-MM-DD)",
        "Data inválida (AAAA-MM-DD)",
    ),
    "invalid_document": Localized(
        "證件號碼無效或校驗位不符",
        "证件号码无效或校验位不符",
        "The identity document number is invalid",
        "O número do documento de identificação é inválido",
    ),
    "unknown_document_type": Localized(
        "不支援的證件類型",
        "不支持的证件类型",
        "Unknown identity document type",
        "Tipo de documento de identificação desconhecido",
    ),
    "no_identity_document": Localized(
        "至少須提供一種身份證明文件",
        "至少须提供一种身份证明文件",
        "At least one identity document is required",
        "É necessário pelo menos um documento de identificação",
    ),
    "material_owed": Localized(
        "此材料於受理時容缺，尚未補齊",
        "此材料于受理时容缺，尚未补齐",
        "This material was accepted as missing and is still owed",
        "Este documento foi aceite em falta e continua por entregar",
    ),
    "material_not_owed": Localized(
        "受理後只可補交尚欠的容缺材料",
        "受理后只可补交尚欠的容缺材料",
        "After acceptance only a material still owed may be supplied",
        "Após a aceitação só se pode entregar um documento ainda em falta",
    ),
    "commitment_not_allowed": Localized(
        "此材料不可以告知承諾代替",
        "此材料不可以告知承诺代替",
        "No commitment may replace this material",
        "Nenhum compromisso pode substituir este documento",
    ),
    "unknown_material": Localized(
        "此事項不需要此材料",
        "此事项不需要此材料",
        "This material is not part of the matter",
        "Este documento não faz parte do assunto",
    ),
    "invalid_digest": Localized(
        "材料摘要格式無效",
        "材料摘要格式无效",
        "The material digest is not in RFC 9530 form",
        "O resumo (digest) do documento não está no formato RFC 9530",
    ),
    "wrong_type": Localized(
        "欄位類型不正確",
        "字段类型不正确",
        "The field has the wrong type",
        "O campo tem o tipo errado",
    ),
    "unexpected_field": Localized(
        "此事項不收集此欄位（資料最小化）",
        "此事项不收集此字段（数据最小化）",
        "The matter does not collect this field (data minimisation)",
        "O assunto não recolhe este campo (minimização de dados)",
    ),
    "schema": Localized(
        "文件不符合結構定義",
        "文件不符合结构定义",
        "The document does not conform to its schema",
        "O documento não está conforme o seu esquema",
    ),
    "invalid_phone": Localized(
        "電話號碼無效", "电话号码无效", "Not a valid phone number", "Número de telefone inválido"
    ),
    "unknown_code": Localized(
        "代碼不在代碼表內",
        "代码不在代码表内",
        "The code is not in the code list",
        "O código não consta da tabela de códigos",
    ),
    "invalid_amount": Localized("金額無效", "金额无效", "Not a valid amount", "Montante inválido"),
    "invalid_key": Localized(
        "公鑰或證書無效或不受信任",
        "公钥或证书无效或不受信任",
        "The key or certificate is invalid or not trusted",
        "A chave ou o certificado é inválido ou não é de confiança",
    ),
    "untrusted_certificate": Localized(
        "證書鏈不受該司法管轄區的信任錨信任",
        "证书链不受该司法管辖区的信任锚信任",
        "The certificate chain does not lead to a trust anchor of the agency's jurisdiction",
        "A cadeia de certificados não leva a uma âncora de confiança da jurisdição do serviço",
    ),
    "invalid_value": Localized(
        "欄位的值無效", "字段的值无效", "The value is not valid", "O valor não é válido"
    ),
    "endpoint_refused": Localized(
        "端點不符合對外連線政策（正式環境須為 https，且不得為內部、鏈路本地或雲端中繼資料位址）",
        "端点不符合对外连接政策（正式环境须为 https，且不得为内部、链路本地或云端元数据地址）",
        "The endpoint is refused by the egress policy (https in production; no internal, "
        "link-local or cloud metadata address)",
        "O endereço é recusado pela política de saída (https em produção; nenhum endereço "
        "interno, de ligação local ou de metadados da nuvem)",
    ),
    "not_in_format": Localized(
        "此格式無法承載該欄位",
        "此格式无法承载该字段",
        "This format cannot carry the field",
        "Este formato não consegue transportar o campo",
    ),
    "reasons_required": Localized(
        "不予批准必須說明理由",
        "不予批准必须说明理由",
        "A rejection must state its reasons",
        "Um indeferimento tem de indicar os fundamentos",
    ),
    "invalid_consent": Localized(
        "同意書的用途、資料類別或目的地無效",
        "同意书的用途、数据类别或目的地无效",
        "The consent's purpose, data categories or destinations are not valid",
        "A finalidade, as categorias de dados ou os destinos do consentimento não são válidos",
    ),
    "biometric_consent_separate": Localized(
        "生物特徵資料須另行單獨同意",
        "生物特征数据须另行单独同意",
        "Biometric data needs its own separate consent",
        "Os dados biométricos precisam de um consentimento próprio e separado",
    ),
    "certificate_signature": Localized(
        "電子證照的簽名無法以簽發機構登記的公鑰驗證",
        "电子证照的签名无法以签发机构登记的公钥验证",
        "The e-certificate's signature does not verify with a registered key of its issuer",
        "A assinatura do certificado electrónico não é verificada por uma chave registada do seu "
        "emissor",
    ),
    "certificate_not_on_approval": Localized(
        "只有批准的決定可附電子證照",
        "只有批准的决定可附电子证照",
        "Only an approval may carry an e-certificate",
        "Só um deferimento pode ser acompanhado de certificado electrónico",
    ),
    "identity_from_login": Localized(
        "申請人身份由登入帳戶提供，毋須再次填寫",
        "申请人身份由登录账户提供，无须再次填写",
        "The applicant's identity comes from the login and is not asked again",
        "A identidade do requerente vem do início de sessão e não é pedida de novo",
    ),
    "media_type_mismatch": Localized(
        "檔案內容與聲明的類型不符",
        "文件内容与声明的类型不符",
        "The file's content is not of the declared media type",
        "O conteúdo do ficheiro não é do tipo declarado",
    ),
    "media_type_not_allowed": Localized(
        "此材料不接受此檔案類型",
        "此材料不接受此文件类型",
        "This material does not accept files of this media type",
        "Este documento não aceita ficheiros deste tipo",
    ),
    "unknown_material_id": Localized(
        "沒有此上載材料",
        "没有此上传材料",
        "No uploaded material with this id",
        "Não há nenhum documento carregado com este identificador",
    ),
    "material_in_use": Localized(
        "此上載材料已用於另一申請",
        "此上传材料已用于另一申请",
        "This uploaded material is named by another application",
        "Este documento carregado é indicado por outro pedido",
    ),
    "materials_too_large": Localized(
        "申請的材料總大小超過上限",
        "申请的材料总大小超过上限",
        "The application's materials are larger in total than allowed",
        "O tamanho total dos documentos do pedido excede o permitido",
    ),
    "material_digest_mismatch": Localized(
        "材料摘要與上載的檔案不符",
        "材料摘要与上传的文件不符",
        "The digest given is not that of the uploaded material",
        "O resumo (digest) indicado não é o do documento carregado",
    ),
    "duplicate_material_id": Localized(
        "同一上載材料已在此申請中列出",
        "同一上传材料已在此申请中列出",
        "This uploaded material is already named in this application",
        "Este documento carregado já está indicado neste pedido",
    ),
    "material_not_uploaded": Localized(
        "材料須先上載，並以 material_id 列出",
        "材料须先上传，并以 material_id 列出",
        "Materials are uploaded first and named by material_id",
        "Os documentos carregam-se primeiro e indicam-se por material_id",
    ),
}


def problem(pointer: str, code: str) -> FieldProblem:
    """A problem at a JSON pointer, with its message in zh-Hant, zh-Hans, en and pt."""
    return FieldProblem(code=code, message=MESSAGES[code], pointer=pointer)


def xml_problem(xpath: str, code: str) -> FieldProblem:
    """A problem at an XPath, with its message in zh-Hant, zh-Hans, en and pt."""
    return FieldProblem(code=code, message=MESSAGES[code], xpath=xpath)
