"""pytest configuration: the tests import their harness from tests/harness.py."""

import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _fast_level_cache(tmp_path_factory):
    """The fast level's calibrations go to a directory of the session, not the user's."""
    if "PVSIM_CACHE" not in os.environ:
        os.environ["PVSIM_CACHE"] = str(tmp_path_factory.mktemp("pvsim-cache"))
    yield
