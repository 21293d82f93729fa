"""Before a service starts: can we reach the brokers with these settings?

aiokafka's clients log a refused password and then only say "Unable to bootstrap", and
faust retries a refused connection forever. One direct connection to each bootstrap
address turns that into one clear :class:`~engine.errors.ConfigError` that names the
settings to fix, before anything is created or consumed.
"""

from __future__ import annotations

import asyncio

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

from engine.errors import ConfigError
from engine.stream.common.settings import Settings

TIMEOUT_S = 15.0


def _address(entry: str) -> tuple[str, int]:
    host, _, port = entry.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"JOURNEYS_BOOTSTRAP: {entry!r} is not host:port")
    return host.strip("[]"), int(port)


async def check_brokers(settings: Settings, client_id: str = "journeys-preflight") -> None:
    """Raise :class:`ConfigError` when no bootstrap broker accepts a connection with the
    settings' security options; say why (refused credentials, TLS, unreachable)."""
    sec = settings.security
    kw = sec.aiokafka_kwargs()
    problems: list[str] = []
    for entry in settings.bootstrap_servers:
        host, port = _address(entry)
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id=client_id,
                    request_timeout_ms=int(TIMEOUT_S * 1000),
                    ssl_context=kw.get("ssl_context"),
                    security_protocol=kw["security_protocol"],
                    sasl_mechanism=kw.get("sasl_mechanism"),
                    sasl_plain_username=kw.get("sasl_plain_username"),
                    sasl_plain_password=kw.get("sasl_plain_password"),
                ),
                TIMEOUT_S,
            )
        except SaslAuthenticationFailed:
            raise ConfigError(
                f"Kafka at {host}:{port} refused the credentials of user "
                f"{sec.sasl_username!r} ({sec.sasl_mechanism}): check JOURNEYS_SASL_USERNAME "
                "and JOURNEYS_SASL_PASSWORD"
            ) from None
        except UnsupportedSaslMechanismError:
            raise ConfigError(
                f"Kafka at {host}:{port} does not accept SASL mechanism {sec.sasl_mechanism}: "
                "check JOURNEYS_SASL_MECHANISM"
            ) from None
        except (TimeoutError, OSError, KafkaError) as exc:
            reason = str(exc) or type(exc).__name__
            if "SSL" in type(exc).__name__ or "certificate" in reason.lower():
                reason += " (check JOURNEYS_SECURITY_PROTOCOL and JOURNEYS_SSL_CAFILE)"
            elif "closed" in reason.lower():
                reason += " (does the broker want TLS or SASL? check JOURNEYS_SECURITY_PROTOCOL)"
            problems.append(f"{host}:{port}: {reason}")
            continue
        conn.close()
        return
    raise ConfigError(
        "can't reach Kafka (JOURNEYS_BOOTSTRAP): "
        + "; ".join(problems)
        + ". Is the broker running (deploy/local-kafka.sh start)?"
    )
