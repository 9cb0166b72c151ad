"""The conformance kit: our client against real rerank servers, recorded.

``make interop`` runs it (see ``interop/__main__.py``); ``interop.replay`` serves the
recordings back to the client in the normal test suite (``tests/wire/test_recorded.py``).
"""
