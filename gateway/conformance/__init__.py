"""The conformance kit: checks a partner agency's endpoint against the partner API contract."""
