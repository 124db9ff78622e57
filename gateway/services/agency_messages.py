"""An agency's call in its own format: the native XML of its jurisdiction, read as the JSON body
the route takes, so every rule, idempotency key and signature applies as to JSON.

The format is the caller's jurisdiction's (as for a submission, :func:`handlers._codec_for`),
and only for the message kinds its field map declares (``messages:``,
:mod:`gateway.mapping.messages`). Large bodies are decoded in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from gateway.domain.commands import Caller
from gateway.domain.errors import UnsupportedMediaTypeError
from gateway.services.handlers import _OFFLOAD_BYTES  # as for submissions
from gateway.services.milestones import Dependencies

EXAMINATION, DECISION, SUPPLEMENT = "examination", "decision", "supplement"
RECHECK = "recheck"


class NativeMessage(Protocol):
    def decode(self, body: bytes) -> dict[str, Any]:
        """The JSON body; MalformedBodyError, or ValidationFailedError with every problem."""
        ...


def native_kinds(deps: Dependencies, caller: Caller) -> Mapping[str, NativeMessage]:
    """The message kinds the caller's jurisdiction's format carries, by kind."""
    codec = deps.codecs.get(caller.jurisdiction)
    messages: Mapping[str, NativeMessage] = getattr(codec, "messages", None) or {}
    return messages


async def read_native(
    deps: Dependencies, caller: Caller, kind: str, body: bytes, media_type: str, what: str
) -> dict[str, Any]:
    """The JSON body of ``what`` (an agency's ``kind`` of message) sent in its own format.

    :raises UnsupportedMediaTypeError: not XML, or XML the caller's format does not declare
        for this kind (naming the two accepted types).
    """
    codec = deps.codecs.get(caller.jurisdiction)
    message = native_kinds(deps, caller).get(kind)
    if message is None or codec is None or media_type not in codec.media_types:
        accepted = f"{what} is application/json or application/xml (the agency's own format)"
        if message is None and media_type in ("application/xml", "text/xml"):
            accepted += f"; the {caller.jurisdiction} format carries no {kind}"
        raise UnsupportedMediaTypeError(accepted)
    if len(body) > _OFFLOAD_BYTES:
        return await asyncio.to_thread(message.decode, body)
    return message.decode(body)
