"""SQLAlchemy Core tables: one schema for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; naive UTC in the database (the same on both engines)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("matter", sa.String(40), nullable=False),
    sa.Column("matter_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("submitted_by", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("source_format", sa.String(16), nullable=False),
    sa.Column("content_digest", sa.String(200), nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("missing", sa.JSON, nullable=False),
    sa.Column("deadline", sa.String(10)),
    sa.Column("applicant_id", sa.String(40)),  # the resident, when they applied themselves
    sa.Column("consent_id", sa.String(40)),  # the consent the forwards rely on
    sa.Column("filed_assurance", sa.String(16)),  # the applicant's login's (None: before)
    sa.Column("mapping_version", sa.String(80)),  # of the translation at receipt
    sa.Column("acceptance", sa.String(16)),  # automatic | agency (None: automatic)
    sa.Column("acceptance_due", sa.String(10)),
    sa.Column("statutory_deadline", sa.String(10)),
    sa.Column("delivery_channel", sa.String(16)),
    sa.Column("overdue_at", UTCDateTime),
    # evidence by data sharing: per-material state (JSON), and the earliest time an
    # outstanding request is due (NULL: none outstanding), which the deadline sweep reads
    sa.Column("evidence", sa.JSON),
    sa.Column("evidence_due", UTCDateTime),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # supplement rounds provided; the last one's arrival restarts the examination (Art. 19(3))
    sa.Column("supplement_round", sa.Integer, nullable=False, server_default="0"),
    sa.Column("examined_from", UTCDateTime),
    sa.Column("recheck", sa.String(16)),  # queued | confirmed | overturned (Art. 25)
    sa.Column("recheck_lead", sa.String(64)),  # the lead agency while its re-check is pending
    # Art. 17-18: the channel's record (service point, officer or device), and at a counter
    # the identity document inspected in person: its holder sees the case once linked to it
    sa.Column("channel_record", sa.JSON),
    sa.Column("identified_doc_type", sa.String(32)),
    sa.Column("identified_number", sa.String(64)),
    # an agency's case: the legal basis it declared (law, article, text; NULL: a resident's
    # case, on its consent, or one filed before the basis was required)
    sa.Column("legal_basis", sa.JSON),
    # a result collected at a counter or kiosk: the pickup code's hash, wrong codes so far
    sa.Column("pickup_hash", sa.String(64)),
    sa.Column("pickup_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_applications_applicant", "applicant_id", "id"),
    sa.Index("ix_applications_submitter", "submitted_by", "id"),  # an agent's filings too
    sa.Index("ix_applications_identified", "identified_doc_type", "identified_number", "id"),
    sa.Index("ix_applications_recheck", "recheck_lead", "id"),  # the re-check work list
    sa.Index("ix_applications_evidence_due", "evidence_due"),
    # 容缺受理 (Art. 12): materials owed after acceptance (JSON), and the earliest due day of
    # one not yet flagged overdue (NULL: none), which the deadline sweep reads
    sa.Column("owed", sa.JSON),
    sa.Column("owed_due", sa.String(10)),
    sa.Index("ix_applications_owed_due", "owed_due"),
)

handlers = sa.Table(
    "handlers",
    metadata,
    sa.Column("application_id", sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("agency_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("message_id", sa.String(40)),  # the forward queued to this agency
    sa.Column("blocked", sa.String(64)),  # fingerprint of what last blocked its forward
    # the supplement round of the document last queued to it (behind the case's: resend)
    sa.Column("supplement_round", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_handlers_agency", "agency_id", "application_id"),
)

timeline = sa.Table(
    "timeline_events",
    metadata,
    sa.Column("application_id", sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("application_id", sa.ForeignKey("applications.id"), nullable=False),
    sa.Column("destination", sa.String(64), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    # the consent the forward relies on (a resident's case): checked again before each send
    sa.Column("consent_id", sa.String(40)),
    # what the forward relies on, recorded when it is queued: consent, legal_basis (an
    # agency's declared basis), resident (a resident's case sent at home). NULL: queued
    # before it was recorded; the relay then reads the case before sending
    sa.Column("relies_on", sa.String(16)),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("ix_outbox_consent", "consent_id"),
)

nonces = sa.Table(
    "nonces",
    metadata,
    sa.Column("key_id", sa.String(200), primary_key=True),
    sa.Column("nonce", sa.String(200), primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_nonces_expiry", "expires_at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("agency_id", sa.String(64), primary_key=True),
    # the use case and the case it acts on (``record_decision app_...``): a key is the caller's
    # name for one request to one route, so the same key elsewhere is another request. Keys
    # kept from before the scope existed have the scope "" and match on every route.
    sa.Column("scope", sa.String(120), primary_key=True, server_default=""),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_digest", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("resource", sa.String(40)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

agencies = sa.Table(
    "agencies",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("jurisdiction", sa.String(2), nullable=False),
    sa.Column("names", sa.JSON, nullable=False),
    sa.Column("endpoint", sa.String(500)),
    sa.Column("matters", sa.JSON, nullable=False),
    sa.Column("sandbox", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # the format forwards reach it in (a codec key); NULL in rows from before: its jurisdiction's
    sa.Column("receives", sa.String(20)),
    # the evidence types it issues (docs/evidence.md); NULL in rows from before: none
    sa.Column("issues_evidence", sa.JSON),
)

agency_keys = sa.Table(
    "agency_keys",
    metadata,
    sa.Column("kid", sa.String(200), primary_key=True),
    sa.Column("agency_id", sa.ForeignKey("agencies.id"), nullable=False),
    sa.Column("jwk", sa.JSON, nullable=False),
    sa.Column("certificate", sa.Text),  # the PEM chain it was validated from, if any
    sa.Column("not_before", UTCDateTime),
    sa.Column("not_after", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("sandbox", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_agency_keys_agency", "agency_id"),
)

registry_version = sa.Table(  # one row: moved by every registry write, in its transaction
    "registry_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("entry", sa.LargeBinary, nullable=False),  # the exact bytes that were hashed
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(  # one row: the chain's last seq and hash, locked by every appender
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("head", sa.String(64), nullable=False),
    sa.Column("token", sa.Text, nullable=False),  # JWS signed by the seal key
    sa.Column("at", UTCDateTime, nullable=False),
)

job_leases = sa.Table(  # scheduled work that one process runs at a time (ADR 0011)
    "job_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),  # host:pid:random of the process
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("taken_at", UTCDateTime, nullable=False),  # when this holder took it
)

# ---- Residents: persons, linked identifiers, logins, consents, delegations ----

persons = sa.Table(
    "persons",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("names", sa.JSON, nullable=False),
    sa.Column("birth_date", sa.String(10), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

identity_accounts = sa.Table(  # one provider account (issuer + subject) -> one person
    "identity_accounts",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("subject", sa.String(200), primary_key=True),
    sa.Column("person_id", sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("linked_at", UTCDateTime, nullable=False),
)

identity_links = sa.Table(
    "identity_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("doc_type", sa.String(20), nullable=False),
    sa.Column("number", sa.String(40), nullable=False),
    sa.Column("issuer", sa.String(2), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("assurance", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # linked | conflict | unverified
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_identity_links_person", "person_id"),
    sa.Index(  # a document is linked to one person at most; conflicts wait for review
        "ux_identity_links_linked",
        "doc_type",
        "number",
        unique=True,
        sqlite_where=sa.text("status = 'linked'"),
        postgresql_where=sa.text("status = 'linked'"),
    ),
    sa.Index("ix_identity_links_document", "doc_type", "number"),
)

logins = sa.Table(  # each completed federated login, with the identity it asserted
    "logins",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("identity", sa.JSON, nullable=False),
    sa.Column("assurance", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_logins_person", "person_id", "at"),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("destinations", sa.JSON, nullable=False),
    sa.Column("matter", sa.String(40)),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("granted_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("withdrawn_at", UTCDateTime),
    sa.Index("ix_consents_person", "person_id"),
)

delegations = sa.Table(
    "delegations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("agent_id", sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("principal_doc_type", sa.String(20), nullable=False),
    sa.Column("principal_number", sa.String(40), nullable=False),
    sa.Column("principal_id", sa.String(40)),
    sa.Column("matters", sa.JSON, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Index("ix_delegations_agent", "agent_id"),
    sa.Index("ix_delegations_principal_doc", "principal_doc_type", "principal_number"),
)

evidence = sa.Table(  # every accepted signed body, kept whole and addressed by its digest
    "evidence",
    metadata,
    sa.Column("digest", sa.String(120), primary_key=True),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("stored_at", UTCDateTime, nullable=False),
)

# ---- OIDC protocol state (gateway.identity) ----

oidc_clients = sa.Table(  # portals, kiosks and counter systems (clients_file or RFC 7591)
    "oidc_clients",
    metadata,
    sa.Column("client_id", sa.String(100), primary_key=True),
    sa.Column("metadata", sa.JSON, nullable=False),  # redirect_uris, jwks, channel, name
    sa.Column("agency_id", sa.String(64), nullable=False),
    sa.Column("sandbox", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

oidc_transactions = sa.Table(  # pending upstream logins: single-use, 10 minutes
    "oidc_transactions",
    metadata,
    sa.Column("state", sa.String(200), primary_key=True),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("nonce", sa.String(200), nullable=False),
    sa.Column("code_verifier", sa.String(200), nullable=False),
    sa.Column("redirect_uri", sa.String(500), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),  # the portal's authorization request
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("browser_hash", sa.String(64)),  # the login cookie's SHA-256 (login CSRF)
    sa.Index("ix_oidc_transactions_expiry", "expires_at"),
)

oidc_sessions = sa.Table(  # completed logins as userinfo and ID tokens serve them
    "oidc_sessions",
    metadata,
    sa.Column("login_id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("acr", sa.String(40), nullable=False),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("claims", sa.JSON, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("browser_hash", sa.String(64)),  # the OP session cookie's SHA-256
    sa.Index("ix_oidc_sessions_expiry", "expires_at"),
    sa.Index("ix_oidc_sessions_browser", "browser_hash"),
)

oidc_codes = sa.Table(  # downstream authorization codes, by SHA-256; single-use, 60 s
    "oidc_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(100), nullable=False),
    sa.Column("redirect_uri", sa.String(500), nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("nonce", sa.String(500), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("login_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("replayed_at", UTCDateTime),
    sa.Index("ix_oidc_codes_expiry", "expires_at"),
)

oidc_tokens = sa.Table(  # issued tokens, kept until they expire (revocation, introspection)
    "oidc_tokens",
    metadata,
    sa.Column("jti", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # access | id
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(100), nullable=False),
    sa.Column("agency_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("login_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Index("ix_oidc_tokens_code", "code_hash"),
    sa.Index("ix_oidc_tokens_expiry", "expires_at"),
)

oidc_refresh_tokens = sa.Table(  # rotating refresh tokens, by SHA-256; a family per code
    "oidc_refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("family", sa.String(64), nullable=False),  # the code_hash that started it
    sa.Column("client_id", sa.String(100), nullable=False),
    sa.Column("agency_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("login_id", sa.String(40), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),  # rotated: presenting it again revokes the family
    sa.Column("revoked_at", UTCDateTime),
    sa.Index("ix_oidc_refresh_family", "family"),
    sa.Index("ix_oidc_refresh_login", "login_id"),
    sa.Index("ix_oidc_refresh_person", "person_id"),
    sa.Index("ix_oidc_refresh_expiry", "expires_at"),
)

oidc_subjects = sa.Table(  # pairwise subject identifiers: one per (agency, person)
    "oidc_subjects",
    metadata,
    sa.Column("agency_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("agency_id", "subject", name="ux_oidc_subjects_subject"),
)

# ---- delivery evidence ----

delivery_evidence = sa.Table(  # each delivered forward: its signed request and signed answer
    "delivery_evidence",
    metadata,
    sa.Column("message_id", sa.String(40), primary_key=True),  # one per message: the first ack
    sa.Column("application_id", sa.String(40), nullable=False),
    sa.Column("destination", sa.String(64), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("request_digest", sa.String(120)),  # evidence.digest of the forwarded body
    sa.Column("request_headers", sa.JSON, nullable=False),
    sa.Column("ack_status", sa.Integer, nullable=False),
    sa.Column("ack_key_id", sa.String(200), nullable=False),
    sa.Column("ack_digest", sa.String(120), nullable=False),  # evidence.digest of the answer
    sa.Column("ack_headers", sa.JSON, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=False),
    sa.Index("ix_delivery_evidence_application", "application_id", "delivered_at"),
)

# ---- notifications ----

notifications = sa.Table(  # one milestone told to one recipient (Art. 22), leased like the outbox
    "notifications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("application_id", sa.String(40), nullable=False),
    sa.Column("recipient", sa.String(64), nullable=False),  # agency id or resident:<person id>
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | in_flight | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
    sa.Index("ix_notifications_recipient", "recipient", "id"),
)

resident_contacts = sa.Table(  # how a resident is told (Art. 22): personal data, never logged
    "resident_contacts",
    metadata,
    sa.Column("person_id", sa.ForeignKey("persons.id"), primary_key=True),
    sa.Column("email", sa.String(254)),
    sa.Column("phone", sa.String(16)),  # E.164
    sa.Column("channels", sa.JSON, nullable=False),  # ["email", "sms"], the applicant's choice
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # resident | idp:<provider>
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

applicant_documents = sa.Table(  # the documents an agency-submitted case names its applicant by
    "applicant_documents",
    metadata,
    sa.Column("application_id", sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("doc_type", sa.String(20), primary_key=True),
    sa.Column("number", sa.String(40), primary_key=True),
    sa.Index("ix_applicant_documents_document", "doc_type", "number", "application_id"),
)

complaints = sa.Table(  # Art. 31; the texts are personal data, kept off the timeline and audit
    "complaints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("application_id", sa.String(40), nullable=False),
    sa.Column("complainant", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("filed_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(16)),  # upheld | dismissed, once answered
    sa.Column("reply", sa.Text),
    sa.Column("answered_by", sa.String(64)),
    sa.Column("answered_at", UTCDateTime),
    sa.Index("ix_complaints_application", "application_id", "filed_at"),
)

certificates = sa.Table(  # Art. 22 e-certificates; subject and content are personal data
    "certificates",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("application_id", sa.String(40), nullable=False),
    sa.Column("matter", sa.String(40), nullable=False),
    sa.Column("issuer", sa.String(64), nullable=False),
    sa.Column("kid", sa.String(200), nullable=False),
    sa.Column("form", sa.String(16), nullable=False),  # jws | document
    sa.Column("media_type", sa.String(200), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("signature", sa.Text),  # the detached JWS of a document
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # valid | revoked
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("reason", sa.Text),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ix_certificates_subject", "subject", "id"),
    sa.Index("ix_certificates_application", "application_id"),
)

# ---- materials (issue 16): uploads, and their bytes in the database blob store ----

materials = sa.Table(  # one upload; its bytes in the blob store under blob_key (SHA-256 hex)
    "materials",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("blob_key", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(120), nullable=False),  # RFC 9530 form
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("filename", sa.String(255)),  # display only
    sa.Column("owner", sa.String(64), nullable=False),  # agency id or resident:<person id>
    sa.Column("application_id", sa.String(40)),  # once bound
    sa.Column("code", sa.String(64)),  # the matter's material code it is bound as
    sa.Column("provenance", sa.JSON),  # evidence by data sharing: issuer, issued_at, ...
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_materials_blob", "blob_key"),
    sa.Index("ix_materials_application", "application_id"),
    sa.Index("ix_materials_unbound", "application_id", "expires_at"),
)

blobs = sa.Table(  # a complete blob of the database blob store: its chunks are visible now
    "blobs",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256, lowercase hex
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

blob_uploads = sa.Table(  # a blob being written: its chunks are kept under this id meanwhile
    "blob_uploads",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
)

blob_chunks = sa.Table(  # owner: a blobs.key once complete, a blob_uploads.id before
    "blob_chunks",
    metadata,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
