import numpy as np
import pytest
import torch


def pytest_configure(config):
    torch.set_num_threads(1)  # tiny problems: threads only add overhead on the 2-core CI machine


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def cuda_params():
    """Devices to run solver tests on: always the CPU, CUDA where there is a GPU."""
    marks = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
    return [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=marks)]
