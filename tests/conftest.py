"""pytest configuration: the tests import their harness from tests/harness.py."""
