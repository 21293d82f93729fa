"""Example calls copied from the Segment and RudderStack HTTP API docs, as the senders'
side of the ingest tests. Kept as published (their odd bits too: see SEGMENT_BATCH)."""

from __future__ import annotations

from typing import Any

# Segment, "HTTP API Source" (Identify, Track, Page, Group, Alias and Batch sections):
# https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
# (now https://www.twilio.com/docs/segment/connections/sources/catalog/libraries/server/http-api)
SEGMENT_IDENTIFY: dict[str, Any] = {
    "userId": "019mr8mf4r",
    "traits": {
        "email": "pgibbons@example.com",
        "name": "Peter Gibbons",
        "industry": "Technology",
    },
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:08.276Z",
    "writeKey": "YOUR_WRITE_KEY",
}

SEGMENT_TRACK: dict[str, Any] = {
    "userId": "019mr8mf4r",
    "event": "Item Purchased",
    "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:12.984Z",
    "writeKey": "YOUR_WRITE_KEY",
}

SEGMENT_PAGE: dict[str, Any] = {
    "userId": "019mr8mf4r",
    "name": "Tracking HTTP API",
    "timestamp": "2012-12-02T00:31:29.738Z",
    "writeKey": "YOUR_WRITE_KEY",
}

SEGMENT_GROUP: dict[str, Any] = {
    "userId": "019mr8mf4r",
    "groupId": "8e9df332ac",
    "traits": {"name": "Initech", "industry": "Technology", "employees": 420},
    "timestamp": "2012-12-02T00:31:38.208Z",
    "writeKey": "YOUR_WRITE_KEY",
}

SEGMENT_ALIAS: dict[str, Any] = {
    "previousId": "39239-239239-239239-23923",
    "userId": "019mr8mf4r",
    "timestamp": "2012-12-02T00:31:29.738Z",
    "writeKey": "YOUR_WRITE_KEY",
}

# The docs' batch: its last two items carry "2015-2-02T00:30:08.276Z", which is not
# ISO-8601 (a one-digit month). The engine refuses such timestamps: those two items are
# dead-lettered, the first two produced.
SEGMENT_BATCH: dict[str, Any] = {
    "batch": [
        {
            "type": "identify",
            "userId": "019mr8mf4r",
            "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
            "timestamp": "2012-12-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "userId": "019mr8mf4r",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        {
            "type": "identify",
            "userId": "971mj8mk7p",
            "traits": {"email": "cindy@example.com", "name": "Cindy Gonzalez", "age": 23},
            "timestamp": "2015-2-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "userId": "971mj8mk7p",
            "event": "Song Played",
            "properties": {"name": "Get Right", "artist": "Jennifer Lopez"},
            "timestamp": "2015-2-02T00:30:12.984Z",
        },
    ],
    "writeKey": "YOUR_WRITE_KEY",
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}

# RudderStack, "HTTP API" (sample payloads of Identify, Track and Batch):
# https://www.rudderstack.com/docs/api/http-api/
RUDDERSTACK_IDENTIFY: dict[str, Any] = {
    "userId": "identified user id",
    "anonymousId": "anon-id-new",
    "context": {
        "traits": {"trait1": "new-val"},
        "ip": "14.5.67.21",
        "library": {"name": "http"},
    },
    "timestamp": "2020-02-02T00:23:09.544Z",
}

RUDDERSTACK_TRACK: dict[str, Any] = {
    "userId": "identified user id",
    "anonymousId": "anon-id-new",
    "event": "Product Purchased new",
    "properties": {"name": "Shirt", "revenue": 4.99},
    "context": {"ip": "14.5.67.21", "library": {"name": "http"}},
    "timestamp": "2020-02-02T00:23:09.544Z",
}

_RS_CONTEXT: dict[str, Any] = {"ip": "14.5.67.21", "library": {"name": "http"}}
_RS_CONTEXT_TRAITS: dict[str, Any] = {"traits": {"trait1": "new-val"}, **_RS_CONTEXT}

RUDDERSTACK_BATCH: dict[str, Any] = {
    "batch": [
        {
            "userId": "identified user id",
            "anonymousId": "anon-id-new",
            "type": "identify",
            "context": _RS_CONTEXT_TRAITS,
            "timestamp": "2020-02-02T00:23:09.544Z",
        },
        {
            "userId": "identified user id",
            "anonymousId": "anon-id-new",
            "event": "Product Purchased new",
            "type": "track",
            "properties": {"name": "Shirt", "revenue": 4.99},
            "context": _RS_CONTEXT,
            "timestamp": "2020-02-02T00:23:09.544Z",
        },
        {
            "userId": "identified user id",
            "anonymousId": "anon-id-new",
            "name": "Page View",
            "type": "page",
            "properties": {"title": "Home", "path": "/"},
            "context": _RS_CONTEXT,
            "timestamp": "2020-02-02T00:23:09.544Z",
        },
        {
            "userId": "identified user id",
            "anonymousId": "anon-id-new",
            "name": "Screen View",
            "type": "screen",
            "properties": {"prop1": "5"},
            "context": _RS_CONTEXT,
            "timestamp": "2020-02-02T00:23:09.544Z",
        },
        {
            "userId": "user123",
            "type": "group",
            "groupId": "group1",
            "traits": {"name": "Company", "industry": "Industry", "employees": 123},
            "context": _RS_CONTEXT_TRAITS,
            "timestamp": "2020-01-21T00:21:34.208Z",
        },
        {
            "userId": "user123",
            "previousId": "previd1",
            "type": "alias",
            "context": _RS_CONTEXT_TRAITS,
            "timestamp": "2020-01-21T00:21:34.208Z",
        },
    ]
}
