"""Provider adapters for the channel gateway: RBM (RCS), a Twilio-shaped SMS API, and a
seeded simulated provider. See :mod:`.base` for the protocols and error meanings."""

from engine.channels.providers.base import (
    Capability,
    Ignored,
    InboundEvent,
    NotReachable,
    OutcomeUnknown,
    ProviderEvent,
    ProviderRejected,
    RateLimited,
    RcsProvider,
    ReceiptEvent,
    SendResult,
    SmsProvider,
    UnsupportedFeature,
)
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.simulated import SimulatedProvider
from engine.channels.providers.twilio import TwilioSmsProvider

__all__ = [
    "Capability",
    "Ignored",
    "InboundEvent",
    "NotReachable",
    "OutcomeUnknown",
    "ProviderEvent",
    "ProviderRejected",
    "RateLimited",
    "RbmProvider",
    "RcsProvider",
    "ReceiptEvent",
    "SendResult",
    "SimulatedProvider",
    "SmsProvider",
    "TwilioSmsProvider",
    "UnsupportedFeature",
]
