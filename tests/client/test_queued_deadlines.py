"""A call's deadline holds while it waits its turn: for a place at the adaptive gate, or
behind another call's batches in the client's shared pool (sync), on both paths."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from support import MockAPI, run_mode

from rerank_integrations import APITimeoutError, RerankClient
from rerank_integrations._ratelimit import AdaptiveGate


def test_a_gate_place_is_waited_for_at_most_the_time_given() -> None:
    gate = AdaptiveGate(1)
    assert gate.acquire(0)
    assert not gate.acquire(0)  # no place, no time: not taken
    assert gate.in_flight == 1
    gate.release()
    assert gate.acquire(0) and gate.in_flight == 1


def _timed(function: Callable[[], Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        function()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


class _Held:
    """Something another call holds (a gate place, a pool thread) and lets go of after
    ``seconds``, so that a call that ignores its deadline still ends, late."""

    def __init__(self, release: Callable[[], object], seconds: float = 3.0) -> None:
        self._release = release
        self._fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.start()

    def _fire(self) -> None:
        self._fired.set()
        self._release()

    def let_go(self) -> None:
        self._timer.cancel()
        self._timer.join()
        if not self._fired.is_set():
            self._release()


def test_the_deadline_holds_while_a_call_waits_for_a_place_at_the_gate(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    client = make_client(adaptive_concurrency=True, max_concurrency=1)
    gate = client._connection.gate
    assert gate is not None and gate.acquire()  # another call's batch holds the one place
    held = _Held(gate.release)
    try:
        elapsed, error = _timed(
            lambda: run_mode(
                mode,
                lambda: client.rerank("apple", ["pear", "apple"], deadline=0.3),
                lambda: client.arerank("apple", ["pear", "apple"], deadline=0.3),
            )
        )
    finally:
        held.let_go()
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 0.3s" in str(error)
    assert elapsed < 1.5
    assert gate.in_flight == 0


def test_the_deadline_holds_while_a_calls_batches_queue_behind_another_call(
    mode: str, make_client: Callable[..., RerankClient], mock_api: MockAPI
) -> None:
    client = make_client(max_concurrency=1, max_documents_per_request=1)
    busy = threading.Event()
    if mode == "sync":  # the client's one batch thread runs another call's batch
        client._engine.pools.executor().submit(busy.wait, 3.0)
    held = _Held(busy.set)
    try:
        elapsed, error = _timed(
            lambda: run_mode(
                mode,
                lambda: client.rerank("apple", ["pear", "apple"], deadline=0.3),
                lambda: client.arerank("apple", ["pear", "apple"], deadline=0.3),
            )
        )
    finally:
        held.let_go()
    if mode == "async":  # tasks queue in no shared pool: the call goes through
        assert error is None
        return
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 0.3s" in str(error)
    assert elapsed < 1.5
    assert mock_api.requests == []  # its batches were cancelled before they started
