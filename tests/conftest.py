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
