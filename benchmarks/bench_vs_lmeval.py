"""harness against lm-eval, side by side: the same model, items, prompts and decoding.

    python benchmarks/bench_vs_lmeval.py [--n 30] [--max-new-tokens 256] [--batch-size 8]
        [--lmeval-openmp both|default|passive] [--cache-dir D] [--data-dir D]

SmolLM2-135M-Instruct answers the first --n GSM8K test problems, greedy, up to
--max-new-tokens new tokens, in batches of --batch-size, four times back to back, each in a
process of its own (its peak RSS is that process's, from wait4):

  lm-eval hf             lm_eval.simple_evaluate(model="hf") on the de-quantized copy of the
                         packaged GGUF that harness's transformers backend makes (under the
                         harness cache dir's models/), OpenMP as the machine gives it
  lm-eval hf, passive    the same with OMP_WAIT_POLICY=PASSIVE, the setting harness's
                         transformers backend makes for itself (--lmeval-openmp)
  harness transformers   `harness run --student smollm2-135m` (the same copy) --fresh
  harness llamacpp       `harness run --student llamacpp:smollm2-135m` (the Q4_1 GGUF itself;
                         skipped when llama-cpp-python is not installed)
  harness llamacpp Nt    the same with `#n_threads=N`, every core (the backend's default is
                         half of them, for machines busy with other work)

The task is lm-eval's own gsm8k.yaml (its prompt "Question: ...\\nAnswer:", its `until`
strings, its filters and exact_match), with the dataset read from the local test file and
zero-shot: lm-eval's 5 examples come from GSM8K's train split, which the data folder lacks.
harness runs it through its `lmeval:` bridge (lm-eval builds the prompts and scores them), with
the reference teacher (no generation) and a generation cache in a fresh folder, so nothing is
reused; the converted weights are made once, before any clock starts.

Printed per tool: wall time of the whole process (imports, model load, generation, scoring,
and for harness its metrics and run folder), generation time and generated tokens (each
output's tokens up to its end of sequence, counted the same way for lm-eval and harness),
tokens per second of generation, peak RSS, exact-match (strict and flexible filters) and
whether each output (cut at the task's `until`, as lm-eval returns it; compared without the
surrounding whitespace, which harness's records drop) and each item's scores equal lm-eval's;
then the ratios against lm-eval.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TASK = "gsm8k_local"
FILTERS = ("strict-match", "flexible-extract")


# -- the lm-eval side, run in a child process ------------------------------------------------
def lmeval_child(job_file: str) -> None:
    """lm_eval.simple_evaluate with model="hf"; counts what `generate` produced."""
    job = json.loads(Path(job_file).read_text())
    import lm_eval
    from lm_eval.models import huggingface
    from lm_eval.tasks import TaskManager

    tally = {"tokens": 0, "seconds": 0.0, "steps": 0, "batches": 0}
    original = huggingface.HFLM._model_generate

    def counted(self, context, max_length, stop, **kw):
        t0 = time.perf_counter()
        out = original(self, context, max_length, stop, **kw)
        tally["seconds"] += time.perf_counter() - t0
        eos = self.model.generation_config.eos_token_id
        ends = set(eos if isinstance(eos, list) else [eos]) | {self.eot_token_id}
        width = context.shape[1]
        for row in out[:, width:].tolist():
            n = next((i + 1 for i, t in enumerate(row) if t in ends), len(row))
            tally["tokens"] += n
        tally["steps"] += out.shape[1] - width
        tally["batches"] += 1
        return out

    huggingface.HFLM._model_generate = counted
    res = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": job["model"], "dtype": "float32"},
        tasks=[TASK],
        task_manager=TaskManager(include_path=job["tasks"], include_defaults=False),
        limit=job["n"],
        batch_size=job["batch_size"],
        device="cpu",
        gen_kwargs={"max_gen_toks": job["max_new_tokens"], "do_sample": False, "temperature": 0},
        log_samples=True,
    )
    items: dict[str, dict[str, Any]] = {}
    for s in res["samples"][TASK]:
        item = items.setdefault(str(s["doc_id"]), {"text": s["resps"][0][0]})
        item[s["filter"]] = bool(s["exact_match"])
    result = {f: res["results"][TASK][f"exact_match,{f}"] for f in FILTERS}
    Path(job["out"]).write_text(json.dumps({"items": items, "em": result, **tally}))


# -- the parent: prepare, run each tool, compare ---------------------------------------------
def data_file(arg: str | None) -> Path:
    env = os.environ.get("HARNESS_DATA_DIR")
    for d in filter(None, (arg, env, str(REPO.parent / "shared" / "data"))):
        f = Path(d).expanduser() / "gsm8k" / "test.jsonl"
        if f.is_file():
            return f.resolve()
    raise SystemExit("no gsm8k/test.jsonl: pass --data-dir D (or set HARNESS_DATA_DIR)")


def write_task(folder: Path, data: Path) -> Path:
    """lm-eval's gsm8k.yaml, reading the local test file, zero-shot (no train split here)."""
    import yaml

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("lm-eval is not installed: pip install 'harness[lmeval]'")
    source = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "gsm8k" / "gsm8k.yaml"
    cfg = yaml.safe_load(source.read_text())
    for key in ("tag", "dataset_name", "training_split", "fewshot_split"):
        cfg.pop(key, None)
    cfg.update(
        task=TASK,
        dataset_path="json",
        dataset_kwargs={"data_files": {"test": str(data)}},
        num_fewshot=0,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TASK}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder


def timed(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run a command; its wall time, exit status and peak RSS (wait4 of that process)."""
    with log.open("w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{tail}")
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024}


def clean_env(work: Path, passive: bool | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_CACHE=str(work / "hf-datasets"),
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(REPO),
    )
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def run_lmeval(label: str, job: dict, work: Path, passive: bool) -> dict[str, Any]:
    out = work / f"{label}.json"
    job_file = work / f"{label}.job.json"
    job_file.write_text(json.dumps({**job, "out": str(out)}))
    cmd = [sys.executable, __file__, "--lmeval-child", str(job_file)]
    got = timed(cmd, clean_env(work, passive), work / f"{label}.log")
    return {**got, **json.loads(out.read_text())}


def run_harness(label: str, student: str, args, work: Path, tasks: Path) -> dict[str, Any]:
    cache = work / "cache"
    cmd = [sys.executable, "-m", "harness", "run", "--student", student, "--teacher", "reference"]
    cmd += ["--tasks", f"lmeval:{TASK},include={tasks}", "--limit", str(args.n)]
    cmd += ["--batch-size", str(args.batch_size), "--max-new-tokens", str(args.max_new_tokens)]
    cmd += ["--temperature", "0", "--fresh", "--quiet", "--cache-dir", str(cache)]
    cmd += ["--out", str(work / "runs"), "--run-id", label]
    got = timed(cmd, clean_env(work, None), work / f"{label}.log")
    run = work / "runs" / label
    recs = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    student_recs = [r for r in recs if r["role"] == "student"]
    if any(r["cached"] for r in student_recs):
        raise SystemExit(f"{label}: a generation came from the cache; the comparison is unfair")
    got["records"] = student_recs
    got["tokens"] = sum(r["completion_tokens"] or 0 for r in student_recs)
    got["seconds"] = sum(r["seconds"] or 0.0 for r in student_recs)
    got["em_run"] = json.loads((run / "metrics.json").read_text())["tasks"]
    return got


def score_harness(result: dict[str, Any], tasks: Path, n: int) -> None:
    """Each harness output scored with both of lm-eval's filters, through the bridge's own
    scorer (the run itself scored the first filter; it must agree)."""
    from harness.lmeval import cut_at
    from harness.tasks import DataSource
    from harness.tasks.lmeval import LMEvalTask
    from harness.types import Generation

    items: dict[str, dict[str, Any]] = {}
    for filt in FILTERS:
        task = LMEvalTask({"task": TASK, "include": str(tasks), "filter": filt})
        problems = {p.id: p for p in task.load(DataSource.resolve(None), n).problems}
        for r in result["records"]:
            p = problems[r["problem_id"]]
            gen = Generation(text=r["text"], finish_reason=r["finish_reason"])
            doc = str(p.meta["doc_id"])
            item = items.setdefault(doc, {"text": cut_at(r["text"], p.meta["until"])[0]})
            item[filt] = bool(task.score(gen, p).correct)
            if filt == FILTERS[0] and item[filt] != bool(r["correct"]):
                raise SystemExit(f"doc {doc}: the bridge scored it differently in the run")
    result["items"] = items
    result["em"] = {f: sum(i[f] for i in items.values()) / len(items) for f in FILTERS}


def rate(result: dict[str, Any]) -> float:
    """Generated tokens per second of generation."""
    return result["tokens"] / result["seconds"] if result["seconds"] else 0.0


def first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"from char {i}: lm-eval {a[i : i + 40]!r} vs {b[i : i + 40]!r}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lmeval-child", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=30, help="GSM8K test problems (the first N)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument(
        "--lmeval-openmp",
        choices=("both", "default", "passive"),
        default="both",
        help="lm-eval with OpenMP's own wait policy, with OMP_WAIT_POLICY=PASSIVE, or both",
    )
    ap.add_argument("--data-dir", help="folder with gsm8k/test.jsonl")
    ap.add_argument("--cache-dir", help="harness cache dir whose models/ holds the converted copy")
    ap.add_argument("--work", help="keep logs, runs and results here (default: a temp dir)")
    args = ap.parse_args()
    if args.lmeval_child:
        lmeval_child(args.lmeval_child)
        return

    from harness.backends.transformers import converted_dir
    from harness.models import parse_spec, weights_location
    from harness.store import default_cache_dir

    data = data_file(args.data_dir)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-vs-lmeval-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # This process scores harness's outputs with lm-eval's task too: offline, caches in `work`.
    os.environ.update({k: v for k, v in clean_env(work, None).items() if k.startswith("HF_")})
    tasks = write_task(work / "tasks", data)
    models = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    models = models / "models"
    models.mkdir(parents=True, exist_ok=True)
    (work / "cache").mkdir(exist_ok=True)
    link = work / "cache" / "models"
    if not link.exists():
        link.symlink_to(models, target_is_directory=True)
    # The converted copy, made once and outside every clock (harness makes it on first use).
    spec = parse_spec("smollm2-135m")
    source, gguf = weights_location(spec)
    target = converted_dir(work / "cache", source, gguf)
    prepare = "from harness.backends.transformers import local_weights as w; from pathlib "
    prepare += "import Path; from harness.models import parse_spec as p; "
    prepare += f"w(p('smollm2-135m'), Path({str(work / 'cache')!r}))"
    subprocess.run([sys.executable, "-c", prepare], check=True, cwd=REPO)

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(
        f"SmolLM2-135M-Instruct, first {args.n} GSM8K test problems (lm-eval's gsm8k prompts, "
        f"zero-shot), greedy, max {args.max_new_tokens} new tokens, batch {args.batch_size}; "
        f"{cores} CPUs, load average {load:.1f} at the start"
    )
    job = {
        "model": str(target),
        "tasks": str(tasks),
        "n": args.n,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
    }
    rows: list[tuple[str, dict[str, Any]]] = []
    if args.lmeval_openmp in ("both", "default"):
        rows.append(("lm-eval hf", run_lmeval("lmeval", job, work, passive=False)))
    if args.lmeval_openmp in ("both", "passive"):
        rows.append(("lm-eval hf, passive", run_lmeval("lmeval-passive", job, work, True)))
    hf = run_harness("harness-transformers", "smollm2-135m", args, work, tasks)
    score_harness(hf, tasks, args.n)
    rows.append(("harness transformers", hf))
    if importlib.util.find_spec("llama_cpp") is not None:
        cpp = run_harness("harness-llamacpp", "llamacpp:smollm2-135m", args, work, tasks)
        score_harness(cpp, tasks, args.n)
        rows.append(("harness llamacpp", cpp))
        if cores > 1:
            # The backend's default is half the cores (its threads spin while they wait, which a
            # busy machine pays for); on a quiet machine every core is the fastest setting.
            spec = f"llamacpp:smollm2-135m#n_threads={cores}"
            cpp = run_harness("harness-llamacpp-all", spec, args, work, tasks)
            score_harness(cpp, tasks, args.n)
            rows.append((f"harness llamacpp {cores}t", cpp))
    else:
        print("harness llamacpp: skipped (llama-cpp-python is not installed)")

    anchor = rows[0][1]
    ref_items = anchor["items"]
    bases = [(label, r) for label, r in rows if label.startswith("lm-eval")]
    short = {"lm-eval hf": "lm-eval", "lm-eval hf, passive": "passive"}
    head = (
        f"{'tool':<21} {'wall s':>7} {'gen s':>7} {'tokens':>6} {'tok/s':>6} {'RSS MiB':>7} "
        f"{'EM strict':>9} {'EM flex':>7} {'same text':>9} {'same EM':>7}"
    )
    for label, _ in bases:
        head += f" {'tok/s x ' + short[label]:>15} {'wall x ' + short[label]:>14}"
    print(head)
    notes: list[str] = []
    for label, r in rows:
        tok_s = rate(r)
        same_text = sum(
            r["items"][d]["text"].strip() == ref_items[d]["text"].strip() for d in ref_items
        )
        same_em = sum(all(r["items"][d][f] == ref_items[d][f] for f in FILTERS) for d in ref_items)
        line = (
            f"{label:<21} {r['wall']:>7.1f} {r['seconds']:>7.1f} {r['tokens']:>6d} "
            f"{tok_s:>6.1f} {r['rss_mib']:>7.0f} {r['em']['strict-match']:>9.3f} "
            f"{r['em']['flexible-extract']:>7.3f} {same_text:>5d}/{len(ref_items):<3d} "
            f"{same_em:>3d}/{len(ref_items):<3d}"
        )
        for _, b in bases:
            line += f" {tok_s / rate(b) if rate(b) else 0:>14.2f}x {b['wall'] / r['wall']:>13.2f}x"
        print(line)
        for d in sorted(ref_items, key=int):
            a, b = ref_items[d]["text"].strip(), r["items"][d]["text"].strip()
            if a != b:
                scored = all(r["items"][d][f] == ref_items[d][f] for f in FILTERS)
                notes.append(
                    f"  {label}, doc {d}: {first_difference(a, b)}"
                    + ("" if scored else "  (scored differently)")
                )
    print(
        "tok/s x: generation throughput over that lm-eval row's; wall x: that row's wall time "
        "over this tool's. same text / same EM: outputs and per-item scores (both filters) "
        f"equal to {rows[0][0]}'s. tokens: each output's own, up to its end of sequence "
        "(llama.cpp's count leaves the end-of-sequence token out)."
    )
    if len(bases) == 2:
        print(
            f"lm-eval with OMP_WAIT_POLICY=PASSIVE (the setting harness's transformers backend "
            f"makes) took {bases[1][1]['wall']:.1f}s, with OpenMP's default {anchor['wall']:.1f}s: "
            "OpenMP threads that spin while they wait take the time the thread they wait for "
            "needs when the cores are busy with other work (the load average above)."
        )
    if notes:
        print(
            f"outputs that differ from {rows[0][0]}'s (the same greedy decoding; llama.cpp "
            "computes on the Q4_1 weights with its own kernels, so a near-tie between two "
            "tokens can break the other way; other batch shapes can do the same):"
        )
        print("\n".join(notes))
    print(f"logs, runs and results: {work}")


if __name__ == "__main__":
    main()
