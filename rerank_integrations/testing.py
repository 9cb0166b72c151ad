"""Switches for test suites: skip the client's waits without patching anything.

Example (pytest)::

    from rerank_integrations import testing

    @pytest.fixture(autouse=True)
    def no_waiting():
        with testing.no_waits() as waits:
            yield waits  # the retry waits asked for, none slept
"""

from ._retry import no_waits, set_testing

__all__ = ["no_waits", "set_testing"]
