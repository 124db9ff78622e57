"""Sandbox partner agencies, with keys generated at run time.

Every Guangdong agency a matter in ``mappings/matters/`` routes cases to is here (the gateway
refuses to start otherwise) and approves every case it receives; the ids are slugs of the
synthetic agencies of ``shared/reference/domain.md`` §7.1 and §7.3. Hong Kong has five
agencies and Macao six, which decide nothing on their own (a tester or the ``every-matter``
scenario decides for those that review a joint case), except a lead: Macao's Social Security
Fund decides by itself on the social-insurance registration it accepts. Three of them issue
evidence by data sharing (``issues_evidence``, ``docs/evidence.md``): the Business
Registration Office (``hk-br-extract``), Macao's Identification Services Bureau
(``mo-resident-status``) and the Guangzhou Public Security Bureau (``gd-residence-permit``).

Their private keys live in ``<sandbox_dir>/keys/agencies/`` (ignored by git) so that the
demo and testers' scripts can sign as them. Every key id starts ``sandbox-``: production
mode refuses such keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.services.ports import Agency
from gateway.trust.keys import (
    SigningKey,
    generate_private_key,
    load_private_key,
    private_key_pem,
)
from gateway.trust.keystore import SANDBOX_PREFIX, write_private

INBOX = "/sandbox/partners/{agency_id}/messages"


@dataclass(frozen=True, slots=True)
class SandboxAgency:
    id: str
    jurisdiction: str
    names: dict[str, str]
    alg: str
    auto_decision: str | None  # what it decides on every case it receives, if anything
    issues_evidence: tuple[str, ...] = ()  # evidence types it answers requests for

    @property
    def kid(self) -> str:
        return f"{SANDBOX_PREFIX}{self.id}-1"

    def agency(self, base_url: str) -> Agency:
        return Agency(
            id=self.id,
            jurisdiction=self.jurisdiction,
            names=self.names,
            endpoint=base_url + INBOX.format(agency_id=self.id),
            matters=("*",),
            issues_evidence=self.issues_evidence,
        )


SANDBOX_AGENCIES: tuple[SandboxAgency, ...] = (
    SandboxAgency(
        id="hk-ird",
        jurisdiction="HK",
        names={
            "zh-Hant": "稅務局商業登記署",
            "zh-Hans": "税务局商业登记署",
            "en": "Inland Revenue Department, Business Registration Office",
            "pt": "Departamento da Receita Interna, Repartição do Registo Comercial",
        },
        alg="ed25519",
        auto_decision=None,
        issues_evidence=("hk-br-extract",),
    ),
    SandboxAgency(
        id="mo-dsf",
        jurisdiction="MO",
        names={
            "zh-Hant": "財政局",
            "zh-Hans": "财政局",
            "en": "Financial Services Bureau",
            "pt": "Direcção dos Serviços de Finanças",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    SandboxAgency(
        id="gd-hq-csb",
        jurisdiction="GD",
        names={
            "zh-Hans": "横琴粤澳深度合作区商事服务局",
            "zh-Hant": "橫琴粵澳深度合作區商事服務局",
            "en": "Hengqin Commercial Services Bureau",
            "pt": "Serviços de Assuntos Comerciais de Hengqin",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="sz-amr",
        jurisdiction="GD",
        names={
            "zh-Hans": "深圳市市场监督管理局",
            "zh-Hant": "深圳市市場監督管理局",
            "en": "Shenzhen Administration for Market Regulation",
            "pt": "Administração de Regulação do Mercado de Shenzhen",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="gz-psb",
        jurisdiction="GD",
        names={
            "zh-Hans": "广州市公安局",
            "zh-Hant": "廣州市公安局",
            "en": "Guangzhou Municipal Public Security Bureau",
            "pt": "Serviços de Segurança Pública do Município de Cantão",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
        issues_evidence=("gd-residence-permit",),
    ),
    SandboxAgency(
        id="zh-hrss",
        jurisdiction="GD",
        names={
            "zh-Hans": "珠海市人力资源和社会保障局",
            "zh-Hant": "珠海市人力資源和社會保障局",
            "en": "Zhuhai Human Resources and Social Security Bureau",
            "pt": "Serviços de Recursos Humanos e Segurança Social de Zhuhai",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="gz-vmo",
        jurisdiction="GD",
        names={
            "zh-Hans": "广州市公安局交通警察支队车辆管理所",
            "zh-Hant": "廣州市公安局交通警察支隊車輛管理所",
            "en": "Guangzhou Traffic Police Vehicle Management Office",
            "pt": "Repartição de Gestão de Veículos da Polícia de Trânsito de Cantão",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="jm-nrb",
        jurisdiction="GD",
        names={
            "zh-Hans": "江门市自然资源局",
            "zh-Hant": "江門市自然資源局",
            "en": "Jiangmen Natural Resources Bureau",
            "pt": "Serviços de Recursos Naturais de Jiangmen",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="gd-tax",
        jurisdiction="GD",
        names={
            "zh-Hans": "国家税务总局广东省税务局",
            "zh-Hant": "國家稅務總局廣東省稅務局",
            "en": "Guangdong Provincial Tax Service, State Taxation Administration",
            "pt": (
                "Serviços Provinciais de Impostos de Guangdong da Administração Estatal de Impostos"
            ),
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="zs-ca",
        jurisdiction="GD",
        names={
            "zh-Hans": "中山市民政局",
            "zh-Hant": "中山市民政局",
            "en": "Zhongshan Civil Affairs Bureau",
            "pt": "Serviços de Assuntos Civis de Zhongshan",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="sz-hc",
        jurisdiction="GD",
        names={
            "zh-Hans": "深圳市卫生健康委员会",
            "zh-Hant": "深圳市衛生健康委員會",
            "en": "Health Commission of Shenzhen Municipality",
            "pt": "Comissão de Saúde do Município de Shenzhen",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    SandboxAgency(
        id="gz-hpf",
        jurisdiction="GD",
        names={
            "zh-Hans": "广州住房公积金管理中心",
            "zh-Hant": "廣州住房公積金管理中心",
            "en": "Guangzhou Housing Provident Fund Management Centre",
            "pt": "Centro de Gestão do Fundo de Previdência para Habitação de Cantão",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
    # For joint reviews with Hong Kong and Macao: they decide nothing on their own.
    SandboxAgency(
        id="hk-cr",
        jurisdiction="HK",
        names={
            "zh-Hant": "公司註冊處",
            "zh-Hans": "公司注册处",
            "en": "Companies Registry",
            "pt": "Registo de Sociedades de Hong Kong",
        },
        alg="ed25519",
        auto_decision=None,
    ),
    SandboxAgency(
        id="hk-mchk",
        jurisdiction="HK",
        names={
            "zh-Hant": "香港醫務委員會",
            "zh-Hans": "香港医务委员会",
            "en": "The Medical Council of Hong Kong",
            "pt": "Conselho Médico de Hong Kong",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    SandboxAgency(
        id="hk-td",
        jurisdiction="HK",
        names={
            "zh-Hant": "運輸署",
            "zh-Hans": "运输署",
            "en": "Transport Department",
            "pt": "Departamento de Transportes de Hong Kong",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    SandboxAgency(
        id="mo-dsat",
        jurisdiction="MO",
        names={
            "zh-Hant": "交通事務局",
            "zh-Hans": "交通事务局",
            "en": "Transport Bureau",
            "pt": "Direcção dos Serviços para os Assuntos de Tráfego",
        },
        alg="ed25519",
        auto_decision=None,
    ),
    SandboxAgency(
        id="mo-ipim",
        jurisdiction="MO",
        names={
            "zh-Hant": "澳門貿易投資促進局",
            "zh-Hans": "澳门贸易投资促进局",
            "en": "Macao Trade and Investment Promotion Institute",
            "pt": "Instituto de Promoção do Comércio e do Investimento de Macau",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    SandboxAgency(
        id="hk-immd",
        jurisdiction="HK",
        names={
            "zh-Hant": "入境事務處婚姻登記處",
            "zh-Hans": "入境事务处婚姻登记处",
            "en": "Immigration Department, Marriage Registry",
            "pt": "Departamento de Imigração, Registo de Casamentos",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    SandboxAgency(
        id="mo-crc",
        jurisdiction="MO",
        names={
            "zh-Hant": "民事登記局",
            "zh-Hans": "民事登记局",
            "en": "Civil Registry",
            "pt": "Conservatória do Registo Civil",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
    ),
    # An evidence issuer only: it answers evidence requests and handles no matter.
    SandboxAgency(
        id="mo-dsi",
        jurisdiction="MO",
        names={
            "zh-Hant": "身份證明局",
            "zh-Hans": "身份证明局",
            "en": "Identification Services Bureau",
            "pt": "Direcção dos Serviços de Identificação",
        },
        alg="ecdsa-p256-sha256",
        auto_decision=None,
        issues_evidence=("mo-resident-status",),
    ),
    # The lead of a matter led from Macao: it accepts and decides on its own.
    SandboxAgency(
        id="mo-fss",
        jurisdiction="MO",
        names={
            "zh-Hant": "社會保障基金",
            "zh-Hans": "社会保障基金",
            "en": "Social Security Fund",
            "pt": "Fundo de Segurança Social",
        },
        alg="ecdsa-p256-sha256",
        auto_decision="approved",
    ),
)


def sandbox_agency(agency_id: str) -> SandboxAgency:
    for agency in SANDBOX_AGENCIES:
        if agency.id == agency_id:
            return agency
    raise KeyError(agency_id)


def agency_key_path(sandbox_dir: Path, agency_id: str) -> Path:
    return sandbox_dir / "keys" / "agencies" / f"{agency_id}.pem"


def ensure_agency_key(sandbox_dir: Path, agency: SandboxAgency) -> SigningKey:
    """The agency's signing key, generated on first use and reused afterwards."""
    path = agency_key_path(sandbox_dir, agency.id)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, private_key_pem(generate_private_key(agency.alg)))
    return SigningKey(agency.kid, load_private_key(path), agency.alg, sandbox=True)
