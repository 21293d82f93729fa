"""Channels: RCS and SMS payloads, fallback, provider adapters."""
