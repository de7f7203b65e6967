"""What `--ray` reserves per actor and how it names a bad address, without a cluster."""

from __future__ import annotations

import socket

import pytest

from harness.backends import backend_class
from harness.backends.vllm import VLLMBackend, engine_kwargs
from harness.cluster import _unreachable
from harness.config import RunConfig
from harness.errors import HarnessError
from harness.models import parse_spec


def test_actor_resources_follow_the_spec() -> None:
    def needs(spec: str) -> dict[str, float]:
        s = parse_spec(spec)
        # The class itself, not the registry's check that the backend's package is installed.
        cls = VLLMBackend if s.backend == "vllm" else backend_class(s.backend)
        return cls.ray_resources(s)

    assert needs("llamacpp:smollm2-135m") == {"num_cpus": 1}
    assert needs("llamacpp:smollm2-135m#n_threads=4,n_gpu_layers=-1") == {
        "num_cpus": 4,
        "num_gpus": 1,
    }
    assert needs("vllm:smollm2-135m#tp=2,dp=2") == {"num_cpus": 1, "num_gpus": 4}
    # vLLM's Ray executor reserves the GPUs itself, in a placement group that may span nodes.
    assert needs("vllm:smollm2-135m#tp=8,executor=ray") == {"num_cpus": 1}
    assert needs("reference") == {"num_cpus": 1}


def test_vllm_ray_executor_reaches_the_engine() -> None:
    spec = parse_spec("vllm:smollm2-135m#tp=2,executor=ray")
    kw = engine_kwargs(spec, "/models/x", None, on_gpu=True)
    assert kw["distributed_executor_backend"] == "ray" and kw["tensor_parallel_size"] == 2
    kw = engine_kwargs(parse_spec("vllm:smollm2-135m"), "/models/x", None, on_gpu=True)
    assert "distributed_executor_backend" not in kw
    with pytest.raises(HarnessError, match="executor"):
        parse_spec("vllm:smollm2-135m#executor=slurm")


def test_unreachable_head_is_named_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        assert "refused" in (_unreachable(f"127.0.0.1:{port}") or "")
        assert "refused" in (_unreachable(f"ray://127.0.0.1:{port}") or "")
        s.listen()
        assert _unreachable(f"127.0.0.1:{port}") is None
    assert "host:port" in (_unreachable("no-port-here") or "")


def test_where_generation_runs_is_not_the_run_id() -> None:
    base = RunConfig.build(student="llamacpp:smollm2-135m")
    on_ray = RunConfig.build(student="llamacpp:smollm2-135m", ray="auto", ray_actors=3)
    assert base.default_run_id() == on_ray.default_run_id()
    with pytest.raises(HarnessError, match="--ray-actors"):
        RunConfig.build(student="x", ray_actors=0)
