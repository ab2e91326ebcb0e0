import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import ewsenv  # noqa: E402


@pytest.fixture(scope="session")
def broker():
    b = ewsenv.Broker()
    yield b
    b.close()


@pytest.fixture(scope="session")
def redis():
    r = ewsenv.Redis()
    yield r
    r.close()


@pytest.fixture
def names(request):
    return ewsenv.Names(request.node.name.replace("_", "-").replace("[", "-")
                        .rstrip("]"))
