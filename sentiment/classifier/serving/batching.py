"""Score concurrent requests together: a bounded queue of texts and one worker that batches them.

Each request's texts wait in the queue. The worker takes the oldest requests, whole, until the
batch holds `max_batch` texts or `max_wait` seconds have passed since the first of them arrived,
scores the batch in one model call (in its own thread, so the event loop keeps accepting
requests), and hands each request its rows. That is TensorFlow Serving's batching: a bigger
batch per call when requests come together, no wait beyond `max_wait` when they do not. With
batching off, each request is scored alone, in arrival order.

The queue is bounded in texts: a request that would overflow it is refused at once (QueueFull),
so under overload the server answers 503 instead of holding ever more requests in memory. A
request whose caller gave up (timed out or disconnected) before its turn is dropped, unscored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The queue holds too many texts to take this request now."""


@dataclass
class _Waiting:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


class Batcher:
    """The queue and its worker. `score(texts)` returns one row per text (any sequences the caller
    splits back: here the probabilities and the labels); `on_batch(texts)` sees each batch's size.
    """

    def __init__(
        self,
        score: Callable[[list[str]], tuple[Any, ...]],
        *,
        max_batch: int,
        max_wait: float,
        max_queued: int,
        batching: bool = True,
        on_batch: Callable[[int], object] = lambda texts: None,
    ):
        if max_batch < 1 or max_queued < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queued must be at least 1, max_wait at least 0")
        self.score, self.on_batch = score, on_batch
        self.max_batch, self.max_wait, self.max_queued = max_batch, max_wait, max_queued
        self.batching = batching
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._queued_texts = 0
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker: asyncio.Task | None = None
        self.in_flight = 0  # texts being scored now

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Stop the worker (requests still waiting fail) and release the model's thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str]) -> tuple[Any, ...]:
        """The model's rows for these texts, once their batch is scored; QueueFull at once if the
        queue cannot take them."""
        if self._queued_texts + len(texts) > self.max_queued:
            raise QueueFull(f"{self._queued_texts} texts are waiting (at most {self.max_queued})")
        waiting = _Waiting(texts, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        self._queued_texts += len(texts)
        self._arrived.set()
        return await waiting.future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._drop_abandoned()
            if not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if self.batching:
                deadline = loop.time() + self.max_wait
                while self._texts_waiting() < self.max_batch and loop.time() < deadline:
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
                    except TimeoutError:
                        break
            batch = self._take()
            if not batch:
                continue
            texts = [text for waiting in batch for text in waiting.texts]
            self.in_flight = len(texts)
            self.on_batch(len(texts))
            try:
                rows = await loop.run_in_executor(self._executor, self.score, texts)
            except Exception as error:  # the model failed: every request of the batch hears why
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(error)
                continue
            finally:
                self.in_flight = 0
            start = 0
            for waiting in batch:
                end = start + len(waiting.texts)
                if not waiting.future.done():
                    waiting.future.set_result(tuple(column[start:end] for column in rows))
                start = end

    def _texts_waiting(self) -> int:
        return sum(len(w.texts) for w in self._waiting if not w.future.done())

    def _drop_abandoned(self) -> None:
        kept = collections.deque(w for w in self._waiting if not w.future.done())
        self._queued_texts -= sum(len(w.texts) for w in self._waiting) - sum(
            len(w.texts) for w in kept
        )
        self._waiting = kept

    def _take(self) -> list[_Waiting]:
        """The oldest waiting requests, whole, up to max_batch texts (a larger request alone);
        one request with batching off."""
        self._drop_abandoned()
        batch: list[_Waiting] = []
        texts = 0
        while self._waiting:
            nxt = self._waiting[0]
            if batch and (not self.batching or texts + len(nxt.texts) > self.max_batch):
                break
            batch.append(self._waiting.popleft())
            texts += len(nxt.texts)
            self._queued_texts -= len(nxt.texts)
            if not self.batching:
                break
        return batch
