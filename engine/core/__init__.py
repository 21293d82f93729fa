"""The sans-I/O core: ``advance(state, input, now) -> (state, effects)``.

Pure and deterministic: no clock, no randomness, no I/O, no faust / aiokafka / asyncio.
Ids and split buckets are derived by hashing stable inputs (:mod:`engine.core.ids`).
"""

from engine.core.effects import Effect, Outcome, Revoke, ScheduleWake, SendRequest
from engine.core.engine import Engine, EngineConfig
from engine.core.ids import wake_token
from engine.core.inputs import Inbound, Input, Receipt, UserEvent, Wake
from engine.core.state import UserState
from engine.core.user_actions import UserAction

__all__ = [
    "Effect",
    "Engine",
    "EngineConfig",
    "Inbound",
    "Input",
    "Outcome",
    "Receipt",
    "Revoke",
    "ScheduleWake",
    "SendRequest",
    "UserAction",
    "UserEvent",
    "UserState",
    "Wake",
    "wake_token",
]
