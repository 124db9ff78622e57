"""What a particular of each kind holds: one set of rules for the matter's JSON Schema
(:mod:`gateway.mapping.matter_schema`) and the check of every submission
(:mod:`gateway.services.validation`).

Money and addresses have the shape of the canonical schema's ``$defs`` (a test keeps these
constants equal to them); dates are ISO ``YYYY-MM-DD`` and real; an integer travels as a string
of digits, as the native formats write it (``"3"`` employees).
"""

from __future__ import annotations

import re

TEXT_MAX_LENGTH = 2000
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
INTEGER_PATTERN = "^[0-9]{1,9}$"
AMOUNT_PATTERN = "^[0-9]{1,15}(\\.[0-9]{2})?$"
CURRENCIES = ("CNY", "HKD", "MOP")
ADDRESS_MEMBERS = {"text": 500, "district": 100}  # free text members and their longest length
AREA_CODE_PATTERN = "^([0-9]{6}|[0-9]{12})$"
ADDRESS_JURISDICTIONS = ("HK", "MO", "GD")

DATE = re.compile(DATE_PATTERN)
INTEGER = re.compile(INTEGER_PATTERN)
AMOUNT = re.compile(AMOUNT_PATTERN)
AREA_CODE = re.compile(AREA_CODE_PATTERN)
