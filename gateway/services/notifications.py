"""Notifications on each milestone (Art. 22, 31): recorded with the change, then dispatched.

:func:`record` runs inside :func:`gateway.services.milestones.settle`, so each milestone's
notification rows commit in the transaction of the change they tell, or not at all: a process
that dies after the commit loses none, and a refused action writes none. One row per recipient:

- the agency that submitted the case (when an agency did), and the resident who applied — or,
  for an agency's case, :data:`APPLICANT`: whoever the dispatcher finds behind the identity
  document the case names (:func:`gateway.services.visibility.applicants`), so the submission
  stays write-only and a resident whose login links the document later is told of what follows;
- for a withdrawal, an overdue case or an owed material past its due day (``material.overdue``,
  Art. 12), also every handling agency;
- for a complaint filed, also the lead agency (who answers it); for an automatic decision drawn
  for re-check, the lead agency only;
- for a forward withheld (``message.withheld``: the case is on hold, no consent in force or
  declared basis covers it), the resident who applied, or the agency that submitted — once
  per move, however many forwards it held;
- for a supplement provided, the lead agency and every handler already holding the case only
  (they examine or review the supplemented document, Art. 19(3), 20);
- a corrective decision after an overturned re-check (Art. 25) carries its routes of redress,
  as a rejection does (Art. 21).

:class:`Dispatcher` claims due rows with a lease, as the outbox relay does, and hands each to a
:class:`~gateway.services.ports.Notifier`; transient failures are retried later with capped,
jittered backoff (the schedule lives in the database), permanent ones are parked as dead. It is
safe to cancel at any point: a row whose lease runs out is claimed again. A resident's
notifications are read at ``GET /v1/me/notifications`` whatever the dispatcher did.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from tenacity import RetryCallState
from tenacity.wait import wait_exponential_jitter

from gateway.domain import ids
from gateway.domain.application import Application
from gateway.domain.errors import Localized, PermanentDeliveryError, TransientDeliveryError
from gateway.domain.events import Event
from gateway.services.ports import (  # APPLICANT: an agency's case, the resident(s) it names
    APPLICANT,
    Clock,
    Notification,
    Notifier,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger("gateway.notifications")
RESIDENT = "resident:"


def is_agency(recipient: str) -> bool:
    """Whether a notification's recipient is an agency id (else the applicant's side)."""
    return recipient != APPLICANT and not recipient.startswith(RESIDENT)


MESSAGES: dict[str, Localized] = {
    "application.accepted": Localized(
        "您的申請已獲受理。",
        "您的申请已获受理。",
        "Your application has been accepted.",
        "O seu pedido foi aceite.",
    ),
    "application.accepted.deemed": Localized(
        "您的申請已自收件之日起視為受理。",
        "您的申请已自收件之日起视为受理。",
        "Your application is deemed accepted as of the day it was received.",
        "O seu pedido considera-se aceite desde o dia em que foi recebido.",
    ),
    "application.not_accepted": Localized(
        "您的申請不予受理，理由見不予受理通知書。",
        "您的申请不予受理，理由见不予受理通知书。",
        "Your application was not accepted; the notice states the reasons.",
        "O seu pedido não foi aceite; a notificação indica as razões.",
    ),
    "application.supplement_requested": Localized(
        "您的申請須補正材料，一次性告知書列明全部所缺材料。",
        "您的申请须补正材料，一次性告知书列明全部所缺材料。",
        "Materials are missing: one notice lists all of them; please supply them.",
        "Faltam documentos: uma única notificação indica todos; queira apresentá-los.",
    ),
    "application.approved": Localized(
        "您的申請已獲批准。",
        "您的申请已获批准。",
        "Your application has been approved.",
        "O seu pedido foi deferido.",
    ),
    "application.rejected": Localized(
        "您的申請不獲批准，決定書載明理由及救濟途徑。",
        "您的申请不获批准，决定书载明理由及救济途径。",
        "Your application was rejected; the decision states the reasons and the routes of redress.",
        "O seu pedido foi indeferido; a decisão indica as razões e os meios de impugnação.",
    ),
    "application.result_delivered": Localized(
        "辦理結果已按您選擇的方式送達。",
        "办理结果已按您选择的方式送达。",
        "The result has been delivered by the channel you chose.",
        "O resultado foi entregue pelo meio que escolheu.",
    ),
    "application.result_ready_for_pickup": Localized(
        "辦理結果可憑取件碼於櫃檯或自助服務機領取。",
        "办理结果可凭取件码于柜台或自助服务机领取。",
        "The result can be collected at the counter or kiosk with your pickup code.",
        "O resultado pode ser levantado no balcão ou no quiosque com o seu código de levantamento.",
    ),
    "application.withdrawn": Localized(
        "您的申請已撤回。",
        "您的申请已撤回。",
        "Your application has been withdrawn.",
        "O seu pedido foi retirado.",
    ),
    "deadline.overdue": Localized(
        "您的申請已超過承諾辦理時限，已督促有關部門辦理。",
        "您的申请已超过承诺办理时限，已督促有关部门办理。",
        "Your application is past its promised time limit; the agencies have been reminded.",
        "O seu pedido ultrapassou o prazo prometido; os serviços foram lembrados.",
    ),
    "application.decision_corrected": Localized(
        "您的申請經人工複核後已作出更正決定，決定書載明理由及救濟途徑。",
        "您的申请经人工复核后已作出更正决定，决定书载明理由及救济途径。",
        "A human re-check corrected the automatic decision on your application; the corrective "
        "decision states the reasons and the routes of redress.",
        "Uma revisão humana corrigiu a decisão automática do seu pedido; a decisão corretiva "
        "indica as razões e os meios de impugnação.",
    ),
    "material.overdue": Localized(
        "您的申請於受理時容缺的材料已逾期未補交，請盡快補交。",
        "您的申请于受理时容缺的材料已逾期未补交，请尽快补交。",
        "A material your application was accepted without is past its due date; please supply "
        "it now.",
        "Um documento dispensado na aceitação do seu pedido ultrapassou o prazo; queira "
        "apresentá-lo agora.",
    ),
    "message.withheld": Localized(
        "您的申請已暫停：沒有有效的同意涵蓋向辦理機關傳送您的資料。您可重新給予同意讓申請繼續，或撤回申請。",
        "您的申请已暂停：没有有效的同意涵盖向办理机关传送您的数据。您可重新给予同意让申请继续，或撤回申请。",
        "Your application is on hold: no consent in force covers sending your data to an "
        "agency. Consent again for it to go on, or withdraw it.",
        "O seu pedido está suspenso: nenhum consentimento em vigor abrange o envio dos seus "
        "dados a uma entidade. Volte a consentir para que prossiga, ou desista dele.",
    ),
    "complaint.filed": Localized(
        "您的投訴已收到。",
        "您的投诉已收到。",
        "Your complaint has been received.",
        "A sua reclamação foi recebida.",
    ),
    "complaint.answered.upheld": Localized(
        "您的投訴已獲答覆：投訴成立。",
        "您的投诉已获答复：投诉成立。",
        "Your complaint has been answered: it is upheld.",
        "A sua reclamação foi respondida: é procedente.",
    ),
    "complaint.answered.dismissed": Localized(
        "您的投訴已獲答覆：投訴不成立。",
        "您的投诉已获答复：投诉不成立。",
        "Your complaint has been answered: it is dismissed.",
        "A sua reclamação foi respondida: é improcedente.",
    ),
}
MILESTONES = frozenset(
    {
        "application.accepted",
        "application.not_accepted",
        "application.supplement_requested",
        "application.approved",
        "application.rejected",
        "application.result_delivered",
        "application.result_ready_for_pickup",
        "application.withdrawn",
        "deadline.overdue",
        "complaint.filed",
        "complaint.answered",
        "decision.recheck_queued",
        "application.supplement_provided",
        "application.decision_corrected",
        "material.overdue",
        "message.withheld",  # the case is on hold: nothing covers a forward it needs
    }
)
_TO_HANDLERS = frozenset({"application.withdrawn", "deadline.overdue", "material.overdue"})
_DETAILS = (
    "deemed",
    "deadline",
    "complaint_id",
    "outcome",
    "round",
    "decision",
    "appeal",
    "owed",  # an acceptance's materials owed later, each with its due day (Art. 12)
    "material",  # material.overdue: which owed material, and its due day
    "due",
    "reason",  # message.withheld: why (consent_withdrawn, consent_expired, no_legal_basis ...)
)
# codes, dates and the routes of redress only


def recipients(app: Application, event: Event) -> list[str]:
    """Who is told of ``event``: agency ids and ``resident:<person id>``, each once."""
    if event.type == "decision.recheck_queued":
        return [app.lead.agency_id]
    if event.type == "application.supplement_provided":
        holding = [h.agency_id for h in app.handlers if h.message_id is not None]
        return list(dict.fromkeys([app.lead.agency_id, *holding]))
    if event.type == "message.withheld":  # who can give the consent, or declare the basis
        return [RESIDENT + app.applicant_id] if app.applicant_id else [app.submitted_by]
    out = [] if app.submitted_by.startswith(RESIDENT) else [app.submitted_by]
    out.append(RESIDENT + app.applicant_id if app.applicant_id else APPLICANT)
    if event.type in _TO_HANDLERS:
        out += [h.agency_id for h in app.handlers]
    if event.type == "complaint.filed":
        out.append(app.lead.agency_id)
    return list(dict.fromkeys(out))


def message(event: Event) -> Localized | None:
    """What a resident is told of a milestone, in three scripts."""
    key = event.type
    if event.data.get("deemed"):
        key += ".deemed"
    elif "outcome" in event.data:
        key += f".{event.data['outcome']}"
    return MESSAGES.get(key)


async def record(app: Application, uow: UnitOfWork, now: datetime) -> int:
    """One notification per recipient of each milestone among the pending events, written in
    the caller's transaction. Returns how many."""
    written = 0
    on_hold = False
    for event in app.pending_events:
        if event.type not in MILESTONES:
            continue
        if event.type == "message.withheld":  # once per move, however many forwards it held
            if on_hold:
                continue
            on_hold = True
        for recipient in recipients(app, event):
            notification_id = ids.new_notification_id()
            body: dict[str, Any] = {
                "notification_id": notification_id,
                "application_id": app.id,
                "matter": app.matter,
                "event": event.type,
                "status": app.status.value,
                "at": event.at.isoformat(),
                "recipient": recipient,
                **{k: event.data[k] for k in _DETAILS if k in event.data},
            }
            text = message(event)
            if not is_agency(recipient) and text is not None:
                body["message"] = text.as_dict()
            if event.type == "application.result_ready_for_pickup" and app.issued_pickup_code:
                # the code goes to the applicant's side only (the resident, or the agency that
                # submitted for them); never to a handler, never onto the timeline
                body["pickup_code"] = app.issued_pickup_code
            await uow.notifications.add(
                Notification(notification_id, app.id, recipient, event.type, body, now)
            )
            written += 1
    return written


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    batch: int = 32
    concurrency: int = 8
    lease_seconds: int = 60
    max_attempts: int = 10
    backoff_initial: float = 1.0
    backoff_max: float = 600.0
    idle_poll: float = 1.0


class Dispatcher:
    """Hands committed notifications to a notifier, each once in effect."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        notifier: Notifier,
        clock: Clock,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._notifier = notifier
        self._clock = clock
        self.policy = policy or DispatchPolicy()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(self.policy.concurrency)
        self._backoff = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial, max=self.policy.backoff_max
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled; claim again when woken or every ``idle_poll``."""
        while True:
            self._wake.clear()
            try:
                claimed = await self.run_once()
            except Exception:  # the database may be briefly away; keep the loop alive
                log.exception("notifications.batch_failed")
                claimed = 0
            if claimed >= self.policy.batch:
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation
            # that arrives as the wake does, and the dispatcher would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.idle_poll):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Claim one batch and hand every notification of it over; returns how many."""
        async with self._uow() as uow:
            claimed = await uow.notifications.claim(
                self._clock.now(),
                limit=self.policy.batch,
                lease_seconds=self.policy.lease_seconds,
            )
            await uow.commit()
        if claimed:
            async with asyncio.TaskGroup() as group:
                for notification in claimed:
                    group.create_task(self._dispatch(notification))
        return len(claimed)

    async def _dispatch(self, notification: Notification) -> None:
        """Hand one over and record the outcome. Cancelled, it records nothing: the lease
        runs out and the notification is claimed again."""
        async with self._limit:
            error, permanent = None, False
            try:
                agency = None
                if is_agency(notification.recipient):
                    async with self._uow() as uow:
                        agency = await uow.agencies.get(notification.recipient)
                    if agency is None:
                        raise PermanentDeliveryError("the recipient agency is not registered")
                await self._notifier.notify(agency, notification)
            except TransientDeliveryError as exc:
                error = str(exc.detail)
            except PermanentDeliveryError as exc:
                error, permanent = str(exc.detail), True
            except Exception as exc:  # a bug: counted, so the row ends up dead
                log.exception("notifications.crashed", notification_id=notification.id)
                error = f"unexpected {type(exc).__name__} while notifying"
            try:
                await self._record(notification, error, permanent=permanent)
            except Exception:  # the lease runs out and the notification is handed over again
                log.exception("notifications.record_failed", notification_id=notification.id)

    async def _record(
        self, notification: Notification, error: str | None, *, permanent: bool
    ) -> None:
        now = self._clock.now()
        attempts = notification.attempts + 1
        async with self._uow() as uow:
            if error is None:
                await uow.notifications.delivered(notification.id, now)
                event = "notification.delivered"
            elif permanent or attempts >= self.policy.max_attempts:
                await uow.notifications.dead(notification.id, error)
                event = "notification.dead_lettered"
            else:
                delay = self._backoff(_attempt(attempts))
                await uow.notifications.retry_later(
                    notification.id, now + timedelta(seconds=delay), error
                )
                event = "notification.retry_scheduled"
            await uow.commit()
        log.info(
            event,
            notification_id=notification.id,
            notification_event=notification.event,
            attempts=attempts,
            error=error,
        )


def _attempt(attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state
