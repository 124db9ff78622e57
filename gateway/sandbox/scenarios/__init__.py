"""Scripted sandbox scenarios, run against a running sandbox over HTTP."""
