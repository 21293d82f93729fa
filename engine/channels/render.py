"""Moved to :mod:`engine.journey.render`: rendering a send node belongs to the definitions."""

# compatibility re-export, removed after the issue-9 merge
from engine.journey.render import (
    RenderedCard,
    RenderedCarousel,
    RenderedMedia,
    RenderedMessage,
    RenderedSuggestion,
    SuggestionKind,
    render_send,
)

__all__ = [
    "RenderedCard",
    "RenderedCarousel",
    "RenderedMedia",
    "RenderedMessage",
    "RenderedSuggestion",
    "SuggestionKind",
    "render_send",
]
