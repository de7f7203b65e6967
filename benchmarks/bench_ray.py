"""Items per second of `harness run --ray` with 1 and 2 actors, beside the same generation in
one process, and the Ray path's own cost per item.

The cluster is real: a head and two worker nodes started on this machine (`ray.cluster_utils`),
one CPU each, as `tests/test_ray_cluster.py` uses. The work is SmolLM2-135M-Instruct through
llama.cpp (one thread per actor, as in one process) on `chains` problems, greedy, the run's
planned batches; every wall time includes what a user waits for: actors starting and loading
the model. On 2 cores two actors can at best double one's rate; the point is that the texts
are the same. The overhead line runs the reference backend (fixed text, no model) through the
same path, so what it measures is Ray Data: scheduling, moving requests and generations, and
the driver committing them to the cache.

Run: `python benchmarks/bench_ray.py [--n 24] [--max-new-tokens 32] [--overhead-n 400]`
(about three minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.backends import backend_class, load_backend
from harness.cluster import RayPool, connect
from harness.config import RunConfig
from harness.generate import generate_missing
from harness.models import parse_spec
from harness.runner import build_requests
from harness.store import GenerationCache
from harness.tasks import DataSource, get_task
from harness.types import Generation, Request


def requests(
    student: str, n: int, max_new_tokens: int, batch_size: int, spec: str = "chains:depth=1-4,n=6"
) -> list[Request]:
    task = get_task(spec)
    problems = task.load(DataSource(None, hub=False), n).problems
    config = RunConfig.build(
        student=student, max_new_tokens=max_new_tokens, temperature=0, batch_size=batch_size
    )
    return build_requests(task, problems, parse_spec(student), config)


def in_process(spec_text: str, reqs: list[Request], batch_size: int, root: Path) -> tuple:
    spec = parse_spec(spec_text)
    cache = GenerationCache(root / "local.sqlite")
    results: dict[str, tuple[Generation, bool]] = {}
    t0 = time.perf_counter()
    holder: list = []

    def backend():
        if not holder:
            holder.append(load_backend(spec, cache_dir=root, batch_size=batch_size))
        return holder[0]

    generate_missing(reqs, results, cache, spec, backend, batch_size)
    seconds = time.perf_counter() - t0
    for b in holder:
        b.close()
    cache.close()
    return seconds, {k: g.text for k, (g, _) in results.items()}


def on_ray(spec_text: str, reqs: list[Request], batch_size: int, actors: int, root: Path) -> tuple:
    spec = parse_spec(spec_text)
    cache = GenerationCache(root / f"ray{actors}-{time.monotonic_ns()}.sqlite")
    results: dict[str, tuple[Generation, bool]] = {}
    pool = RayPool(spec, root, batch_size, actors=actors, label=f"{actors} actor(s)")
    t0 = time.perf_counter()
    pool.generate(reqs, results, cache)
    seconds = time.perf_counter() - t0
    cache.close()
    return seconds, {k: g.text for k, (g, _) in results.items()}, len(pool.nodes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="chains problems for the model rows")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=2, help="requests per planned batch")
    ap.add_argument("--overhead-n", type=int, default=400, help="items for the overhead row")
    args = ap.parse_args()
    from ray.cluster_utils import Cluster

    student = "llamacpp:smollm2-135m"
    backend_class("llamacpp")  # one line if the llamacpp extra is missing
    reqs = requests(student, args.n, args.max_new_tokens, args.batch_size)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        connect(cluster.address)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            local_s, local_text = in_process(student, reqs, args.batch_size, root)
            rows = [("in process (anchor)", local_s, 1, True)]
            for actors in (1, 2):
                s, text, nodes = on_ray(student, reqs, args.batch_size, actors, root)
                rows.append((f"--ray, {actors} actor(s)", s, nodes, text == local_text))
            n = len(reqs)
            print(
                f"SmolLM2-135M llama.cpp, {n} chains items, {args.max_new_tokens} new tokens, "
                f"batches of {args.batch_size}, head + 2 worker nodes of 1 CPU"
            )
            print(
                f"{'path':<24}{'wall s':>9}{'items/s':>10}{'vs anchor':>11}{'nodes':>7}"
                f"{'same text':>11}"
            )
            for name, s, nodes, same in rows:
                print(
                    f"{name:<24}{s:>9.2f}{n / s:>10.2f}{local_s / s:>10.2f}x{nodes:>7}"
                    f"{'yes' if same else 'NO':>11}"
                )
            # The path's own cost: fixed text, one item per batch, so every item is a Ray task.
            over = requests(
                "reference", args.overhead_n, args.max_new_tokens, 1, "chains:depth=1-8,n=20"
            )
            ref_local, ref_text = in_process("reference", over, 1, root)
            ref_ray, ray_text, _ = on_ray("reference", over, 1, 2, root)
            per_item = (ref_ray - ref_local) / len(over) * 1000
            print(
                f"overhead: reference backend, {len(over)} items one per batch: in process "
                f"{ref_local:.2f}s, --ray 2 actors {ref_ray:.2f}s (actors' start included): "
                f"{per_item:.1f} ms per item; same text: {'yes' if ray_text == ref_text else 'NO'}"
            )
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
