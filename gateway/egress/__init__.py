"""Outbound calls: where the gateway may send a request, and the one client factory."""
