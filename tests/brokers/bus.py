"""A broker feed on a real ZeroMQ bus for the brokers' tests: the proxy's FeedHub running the
feed, and a SUB socket reading what it publishes (Angel, Kite and Noren share it)."""

from __future__ import annotations

import asyncio
from typing import Any, Self

import orjson
import zmq
import zmq.asyncio

from oaws.brokers.api import Feed
from oaws.server.bus import REJECT_TOPIC, FeedHub


class FeedBus:
    """A FeedHub running ``feed`` on tcp://127.0.0.1:*, and a SUB socket to read what it publishes."""

    def __init__(self, feed: Feed) -> None:
        self.ctx = zmq.asyncio.Context()
        self.hub = FeedHub(feed, "tcp://127.0.0.1:*", ctx=self.ctx)
        self.feed = feed
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(self.hub.endpoint)
        self.sub.setsockopt(zmq.SUBSCRIBE, REJECT_TOPIC)
        self.task: asyncio.Task[None] | None = None

    def subscribe(self, topic: str) -> None:
        self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def unsubscribe(self, topic: str) -> None:
        self.sub.setsockopt(zmq.UNSUBSCRIBE, topic.encode())

    async def next(self, topic: str | None = None, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        """The next message (of ``topic`` if given): (topic, decoded JSON)."""
        async with asyncio.timeout(timeout):
            while True:
                raw_topic, payload = await self.sub.recv_multipart()
                if topic is None or raw_topic.decode() == topic:
                    return raw_topic.decode(), orjson.loads(payload)

    async def ticks(self, topic: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [(await self.next(topic, timeout))[1] for _ in range(count)]

    async def reject(self, timeout: float = 5.0) -> dict[str, Any]:
        return (await self.next(REJECT_TOPIC.decode(), timeout))[1]

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self.hub.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.sub.close(0)
        self.ctx.term()
