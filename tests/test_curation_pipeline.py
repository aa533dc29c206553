"""The curation recipe on the embedded raw crawl: accounting, per-stage precision/recall, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

from conftest import REPO
from infir.data.curation.app import build_stages
from infir.data.curation.dedup import shingles
from infir.data.curation.pipeline import curate
from infir.data.doc_io import InputSpec, read_jsonl_gz
from infir.data.sources.raw_crawl import RawCrawlSource
from infir.hydra_support import register_resolvers

register_resolvers()
STAGES = ["heuristic", "dedup", "decontam", "recall", "quality"]  # the full recipe's order


def _recipe(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("curate", overrides=[f"curation={name}", *overrides])
    return build_stages(cfg.curation)


def _jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a)), set(shingles(b))
    return len(x & y) / max(1, len(x | y))


@pytest.fixture(scope="module")
def crawl_run(tmp_path_factory):
    source = RawCrawlSource()
    docs = list(source.documents())
    cache = tmp_path_factory.mktemp("cur")
    stages, spec = _recipe("full", f"paths.cache_dir={cache}")
    result = curate(stages, spec, cache, documents=docs,
                    documents_fingerprint=source.fingerprint(), write_excluded=True, progress=False)
    dropped = {}  # doc id -> (stage, reason, doc)
    for stage_dir in sorted(result.work_dir.glob("[0-9][0-9]_*")):
        for path in stage_dir.glob("excluded_*.jsonl.gz"):
            for d in read_jsonl_gz(path):
                dropped[d.id] = (d.metadata["dropped_by"], d.metadata["drop_reason"], d)
    return docs, result, dropped


def _reached(docs, dropped, stage_order, stage):
    """Documents that were still in the pipeline when ``stage`` ran."""
    before = stage_order[: stage_order.index(stage)]
    return [d for d in docs if d.id not in dropped or dropped[d.id][0] not in before]


def test_funnel_accounts_for_every_document(crawl_run):
    docs, result, dropped = crawl_run
    funnel = result.funnel
    assert [row["name"] for row in funnel] == ["read", "heuristic", "dedup", "decontam", "recall", "quality"]
    assert funnel[0]["read"] == len(docs)
    for prev, row in zip(funnel, funnel[1:]):
        assert row["read"] == prev["kept"] == row["kept"] + sum(row["dropped"].values())
    kept = result.documents()
    assert len(kept) + len(dropped) == len(docs)
    assert len({d.id for d in kept}) == len(kept) and not {d.id for d in kept} & set(dropped)


def test_heuristic_stage_catches_junk_with_few_clean_losses(crawl_run):
    docs, _, dropped = crawl_run
    by_kind = Counter(d.metadata["noise"] for d in docs)
    caught = Counter(d.metadata["noise"] for d in docs if dropped.get(d.id, ("",))[0] == "heuristic")
    recall = {k: caught[k] / by_kind[k] for k in ("boilerplate", "spam", "non_english", "colon_stub")}
    print("heuristic recall by noise kind:", recall)
    assert min(recall.values()) >= 0.95
    assert all(dropped[d.id][1] == "math_colon_ending" for d in docs if d.metadata["noise"] == "colon_stub")
    assert all(dropped[d.id][1] == "language_not_allowed" for d in docs if d.metadata["noise"] == "non_english")
    clean_loss = caught["clean"] / by_kind["clean"]
    precision = 1 - caught["clean"] / sum(caught.values())
    print(f"heuristic precision {precision:.3f}, clean documents dropped {clean_loss:.3f}")
    assert precision >= 0.85 and clean_loss <= 0.10  # real text has some pages the public rules reject


def test_dedup_stage_precision_and_recall_against_exact_jaccard(crawl_run):
    docs, result, dropped = crawl_run
    order = STAGES
    reached = {d.id: d for d in _reached(docs, dropped, order, "dedup")}
    survived = {i for i in reached if dropped.get(i, ("",))[0] != "dedup"}
    pairs = [(d, reached[d.metadata["duplicate_of"]]) for d in reached.values()
             if d.metadata.get("duplicate_of") in reached]
    true_pairs = [(a, b) for a, b in pairs if a.text == b.text or _jaccard(a.text, b.text) >= 0.8]
    recall = sum((a.id in survived) != (b.id in survived) for a, b in true_pairs) / len(true_pairs)
    removed = [dropped[i][2] for i in reached if dropped.get(i, ("",))[0] == "dedup"]
    # A removal is right when the document has a true duplicate (exact, or Jaccard >= 0.8) in its
    # cluster: clusters are connected components, so the survivor need not be its direct partner.
    members: dict[str, list[str]] = {}
    for d in [*removed, *(result.documents())]:
        if "dedup_cluster" in d.metadata:
            members.setdefault(d.metadata["dedup_cluster"], []).append(d.text)
    # Verification accepts some pairs just under the threshold (it rejects only 5 % at J = 0.8, dedup.py
    # min_agreement): a removal at J >= threshold - 0.1 is a near duplicate, as benchmarks/near_dup_corpus.py scores.
    correct = sum(any(t == d.text or _jaccard(t, d.text) >= 0.7 for t in members[d.metadata["dedup_cluster"]]
                      if t is not d.text) for d in removed)
    precision = correct / len(removed)
    print(f"dedup: {len(true_pairs)} true pairs, recall {recall:.3f}; {len(removed)} removed, precision {precision:.3f}")
    assert recall >= 0.95 and precision >= 0.95


def test_decontamination_removes_pasted_eval_items_only(crawl_run):
    docs, _, dropped = crawl_run
    reached = _reached(docs, dropped, STAGES, "decontam")
    hit = [d for d in reached if dropped.get(d.id, ("",))[0] == "decontam"]
    contaminated = [d for d in reached if d.metadata["noise"] == "contaminated"]
    clean = [d for d in reached if d.metadata["noise"] == "clean"]
    removed = sum(d in hit for d in contaminated) / len(contaminated)
    false_drops = sum(d in hit for d in clean) / len(clean)
    print(f"decontam: removed {removed:.3f} of {len(contaminated)} contaminated, {false_drops:.4f} of {len(clean)} clean")
    assert removed >= 0.99 and false_drops < 0.01
    for d in hit:
        if d.metadata["noise"] == "contaminated":
            flagged = dropped[d.id][2].metadata["contamination"]
            assert d.metadata["benchmark"] in flagged and dropped[d.id][1] == f"contaminated_{flagged[0]}"



def test_recall_drops_general_web_pages_and_keeps_reasoning_text(crawl_run):
    docs, result, dropped = crawl_run
    reached = _reached(docs, dropped, STAGES, "recall")
    off_topic = [d for d in reached if d.metadata["noise"] == "off_topic"]
    clean = [d for d in reached if d.metadata["noise"] == "clean"]
    by_recall = {d.id for d in reached if dropped.get(d.id, ("",))[0] == "recall"}
    recall = sum(d.id in by_recall for d in off_topic) / len(off_topic)
    off_topic_ids = {d.id for d in off_topic}
    precision = len(by_recall & off_topic_ids) / len(by_recall)
    clean_loss = sum(d.id in by_recall for d in clean) / len(clean)
    print(f"recall stage: off-topic recall {recall:.3f}, precision {precision:.3f}, clean loss {clean_loss:.3f}")
    assert recall >= 0.98 and precision >= 0.95 and clean_loss <= 0.02
    kept = result.documents()
    assert all("recall_score" in d.metadata and "quality_score" in d.metadata for d in kept if d.domain != "code")
    assert all(d.metadata["quality_score"] >= 2.5 for d in kept if "quality_score" in d.metadata)

def test_file_inputs_count_malformed_records_in_the_read_stage(tmp_path):
    paths = RawCrawlSource(noise={"boilerplate": 5}, max_code_files=5, n_procedural=10).write_shards(tmp_path / "raw", 2)
    stages, spec = _recipe("heuristic")
    result = curate(stages, spec, tmp_path / "cache", inputs=[InputSpec(str(p), domain="prose") for p in paths],
                    progress=False)
    read = result.funnel[0]
    assert read["dropped"] == {"rejected_invalid_json": 1, "rejected_empty_text": 1, "rejected_missing_text": 1}
    again = curate(stages, spec, tmp_path / "cache", inputs=[InputSpec(str(p), domain="prose") for p in paths],
                   progress=False)
    assert again.work_dir == result.work_dir and again.funnel == result.funnel  # content-addressed reuse


def test_killed_curation_resumes_to_the_same_output(tmp_path):
    small = ["data_mix.sources.raw_crawl.max_code_files=60", "data_mix.sources.raw_crawl.n_procedural=100",
             "curation=heuristic_dedup", "curation.docs_per_shard=40", "curation.workers=1"]

    def command(cache):
        return [sys.executable, "-m", "infir.data", *small, f"paths.cache_dir={cache}", f"paths.output_dir={tmp_path}"]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command(tmp_path / "straight"), cwd=REPO, env=env, check=True, capture_output=True)
    proc = subprocess.Popen(command(tmp_path / "killed"), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list((tmp_path / "killed").glob("curation/*/01_heuristic/*.stats.json"))) >= 3:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    work = next((tmp_path / "killed" / "curation").iterdir())
    assert not (work / "manifest.json").exists(), "the run finished before it was killed"
    subprocess.run(command(tmp_path / "killed"), cwd=REPO, env=env, check=True, capture_output=True)

    def output(cache):
        run = next((cache / "curation").iterdir())
        return [(d.id, d.text) for p in sorted(run.glob("02_dedup/shard_*.jsonl.gz")) for d in read_jsonl_gz(p)]

    straight, resumed = output(tmp_path / "straight"), output(tmp_path / "killed")
    assert resumed == straight and len({i for i, _ in resumed}) == len(resumed)


def _children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` (Linux /proc): pid -> command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry)] = open(f"/proc/{entry}/cmdline").read().replace("\0", " ")
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_kill_9_of_the_curation_driver_takes_its_workers_with_it(tmp_path, executor):
    """Local: the pool's fork server and its workers; ray: the private Ray instance the driver started (GCS, raylet, its
    workers), which would otherwise outlive the driver and answer the next ``ray.init`` on the machine."""
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "infir.data", "curation=heuristic", "curation.workers=2",
                             f"curation.executor={executor}", "curation.docs_per_shard=10",
                             f"paths.cache_dir={cache}", f"paths.output_dir={tmp_path}"],
                            cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: dict[int, str] = {}
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if list(cache.glob("curation/*/01_heuristic/*.stats.json")):  # the pool is up and working
            if executor == "local":  # the fork server and the workers it forked
                workers = {p: c for p, c in _descendants(proc.pid).items() if "forkserver" in c}
            else:
                workers = {p: c for p, c in _descendants(proc.pid).items() if "raylet" in c or "gcs_server" in c
                           or c.startswith("ray::")}
            if workers:
                break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert workers, "no worker of the curation pool was seen before the run ended"
    assert not list(cache.glob("curation/*/manifest.json")), "the run finished before it was killed"
    deadline = time.monotonic() + 30  # a liveness bound, not a speed requirement
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [p for p in workers if _alive(p)]
    for pid in orphans:  # don't leave them behind whatever the verdict
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"workers {[workers[p][:80] for p in orphans]} of the killed driver {proc.pid} outlived it"


def test_temp_files_of_killed_writers_are_cleaned_on_the_next_run(tmp_path):
    from infir.data.curation.pipeline import curate
    from infir.data.documents import Document

    docs = [Document(f"d{i}", f"Document number {i}.", "tiny", "web") for i in range(5)]
    first = curate([], {"name": "none"}, tmp_path, documents=docs, documents_fingerprint="tiny", progress=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        read_dir = first.work_dir / "00_read"
        stale = [read_dir / f".shard_00001.jsonl.gz.{dead.pid}.tmp",
                 read_dir / f".shard_00001.stats.json.{dead.pid}.tmp",
                 tmp_path / "classifiers" / f".tmp-0123abcd-{dead.pid}"]
        busy = [read_dir / f".shard_00002.jsonl.gz.{live.pid}.tmp",
                tmp_path / "classifiers" / f".tmp-4567ef-{live.pid}"]
        for path in stale + busy:
            if path.name.startswith(".tmp-"):
                (path / "partial").mkdir(parents=True)
            else:
                path.write_bytes(b"partial")
        (first.work_dir / "manifest.json").unlink()  # as if the run had been killed before it finished
        again = curate([], {"name": "none"}, tmp_path, documents=docs, documents_fingerprint="tiny", progress=False)
        assert again.work_dir == first.work_dir and [d.id for d in again.documents()] == [d.id for d in docs]
        assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in busy)
    finally:
        live.kill()
        live.wait()


def test_curated_source_cleans_training_text_and_passes_evaluation_text_through(tmp_path):
    from infir.data.curation.pipeline import CuratedSource
    from infir.data.documents import Document
    from infir.data.sources.select import SplitSelect

    class Tiny:
        name, domain = "tiny", "math"

        def fingerprint(self):
            return "tiny-v1"

        def documents(self):
            yield Document("a", "Problem: add 2 and 3.\nSolution: 2 + 3 = 5.", "tiny", "math", {"split": "train"})
            yield Document("b", "Problem: add 2 and 3.\nSolution:", "tiny", "math", {"split": "train"})
            yield Document("c", "Theorem. Proof:", "tiny", "math", {"split": "validation"})

    stages, spec = _recipe("heuristic")
    curated = CuratedSource(Tiny(), stages, spec, tmp_path)
    assert sorted(d.id for d in curated.documents()) == ["a", "c"]  # train stub dropped, validation untouched
    assert curated.result.funnel[1]["dropped"] == {"math_colon_ending": 1}
    assert [d.id for d in SplitSelect(Tiny(), ["validation"]).documents()] == ["c"]


def _output_bytes(result) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in result.output_shards]


def _counts(funnel) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in funnel]


@pytest.mark.parametrize("executor,workers", [("local", 2), ("ray", 2)])
def test_full_recipe_gives_the_same_bytes_on_every_executor(crawl_run, tmp_path, executor, workers):
    """The in-process run of ``crawl_run`` (1 worker) against 2 spawned workers and a 2-CPU local Ray instance:
    same shards, byte for byte, and the same funnel counts; the decision travels to tasks split per shard."""
    from infir.data.execution import ExecutorSpec

    docs, result, _ = crawl_run
    source = RawCrawlSource()
    stages, spec = _recipe("full", f"paths.cache_dir={result.work_dir.parents[1]}")  # classifiers trained once
    other = curate(stages, spec, tmp_path, documents=docs, documents_fingerprint=source.fingerprint(),
                   workers=ExecutorSpec(executor, workers), write_excluded=True, progress=False)
    assert other.work_dir.name == result.work_dir.name  # the executor is not part of the cache key
    assert _counts(other.funnel) == _counts(result.funnel)
    assert _output_bytes(other) == _output_bytes(result)
    excluded = sorted(p.relative_to(result.work_dir) for p in result.work_dir.glob("*/excluded_*"))
    assert excluded == sorted(p.relative_to(other.work_dir) for p in other.work_dir.glob("*/excluded_*"))


def _descendants(pid: int) -> dict[int, str]:
    found, todo = {}, [pid]
    while todo:
        children = _children(todo.pop())
        found.update(children)
        todo.extend(children)
    return found


def _task_title(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_a_killed_ray_worker_changes_nothing_in_the_output(tmp_path):
    """SIGKILL a Ray worker while it runs a pass: Ray retries its task, which skips the shards it had finished;
    the output equals the local in-process run's, nothing lost or duplicated."""
    import threading

    from infir.data.execution import ExecutorSpec

    source = RawCrawlSource(max_code_files=60, n_procedural=100)
    docs = list(source.documents())
    stages, spec = _recipe("heuristic_dedup_decontam", f"paths.cache_dir={tmp_path}")
    local = curate(stages, spec, tmp_path / "local", documents=docs, documents_fingerprint=source.fingerprint(),
                   docs_per_shard=20, progress=False)
    killed: list[int] = []
    stop = threading.Event()

    def kill_one_busy_worker() -> None:
        while not stop.is_set():
            if list((tmp_path / "ray").glob("curation/*/01_*/*.stats.json")):  # a task is under way
                busy = [p for p in _descendants(os.getpid()) if "run_pass_task" in _task_title(p)
                        or "01_heuristic[" in _task_title(p)]
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    killed.append(busy[0])
                    return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_one_busy_worker, daemon=True)
    watcher.start()
    try:
        ray_run = curate(stages, spec, tmp_path / "ray", documents=docs, documents_fingerprint=source.fingerprint(),
                         docs_per_shard=20, workers=ExecutorSpec("ray", 2), progress=False)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no Ray worker was seen running a pass task"
    assert _counts(ray_run.funnel) == _counts(local.funnel)
    assert _output_bytes(ray_run) == _output_bytes(local)
