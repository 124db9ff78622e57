"""The conformance kit: checks a partner agency's endpoint against the partner API contract.

``probes`` (what is sent), ``judges`` and ``checks`` (what must come back, one check per
rule), ``runner`` (sends and judges, in order), ``junit`` (the report for CI), ``cli``
(``gba-gateway conformance run``). See docs/conformance.md.
"""
