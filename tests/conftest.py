import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A data root holding isles-sim ``tiny`` (``prepare``'s output), generated once per session.
    Tests read it; one that changes it works on a copy."""
    from dycon.data.prepare import prepare

    root = tmp_path_factory.mktemp("tiny-data")
    prepare("isles-sim", dest=root / "isles-sim", preset="tiny")
    return root


@pytest.fixture(scope="session")
def default_data(tmp_path_factory):
    """A data root holding the default isles-sim (what ``make reproduce`` generates), made once
    per session for the end-to-end CLI tests; tests read it and must not change it."""
    from dycon.data.prepare import prepare

    root = tmp_path_factory.mktemp("default-data")
    prepare("isles-sim", dest=root / "isles-sim")
    return root
