import os

import pytest

import visrc  # noqa: F401  first, as in user code: with mmcv-lite it provides mmcv._ext (visrc.ops)


@pytest.fixture(autouse=True, scope="session")
def _figures_to_tmp(tmp_path_factory):
    """Tests never write into the committed figures/."""
    os.environ["VISRC_FIGURES_DIR"] = str(tmp_path_factory.mktemp("figures"))
    yield


@pytest.fixture(scope="session")
def toy_small(tmp_path_factory):
    """The 'small' toy benchmark, generated once per test session."""
    from visrc.data.toy import make_toy

    return make_toy(tmp_path_factory.mktemp("toy") / "small", preset="small", seed=0, progress=False)
