"""pytest plugin for scripts/milvus-suite: the Milvus 1.1 suite's fixtures call pytest.exit()
when a collection cannot be created, which would end the whole session; this turns that call
into an error of the one test, so one bad answer does not hide the rest."""

import pytest


class FixtureExit(Exception):
    """A fixture asked pytest to exit."""


def _exit(reason="", returncode=None, msg=None):
    raise FixtureExit(reason or msg or "pytest.exit() called by a fixture")


def pytest_configure(config):
    pytest.exit = _exit
