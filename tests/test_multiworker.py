"""--strategy multiworker: two worker processes on 127.0.0.1 train like one device on the same
global batch (the tolerances of tests/test_distribute.py, from float32 arithmetic), and an
app run on two workers (the classifier: Keras' own train step), killed, resumes when both
are started again.

Each worker is a fresh process (TensorFlow sets its collectives up at start-up); every
process is bounded in time.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from preprocessing import files
from preprocessing.files import InputError
from tests.distribute_cases import assert_same_training
from training.devices import cluster_task

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TIMEOUT = 300


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_env(ports: list[int], index: int) -> dict:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
    return {**ENV, "TF_CONFIG": json.dumps(config)}


def start(command: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


CASES = ("endovae", "pixelda")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One device and two workers, each one process training every case."""
    folder = tmp_path_factory.mktemp("multiworker")
    ports = free_ports(2)
    envs = {"single": ENV, "worker0": worker_env(ports, 0), "worker1": worker_env(ports, 1)}
    module = [sys.executable, "-m", "tests.multiworker_cases"]
    logs = {name: open(folder / f"{name}.log", "w") for name in envs}  # noqa: SIM115
    processes = {
        name: start([*module, str(folder / name), *CASES], env, logs[name])
        for name, env in envs.items()
    }
    for name, process in processes.items():
        assert process.wait(TIMEOUT) == 0, (folder / f"{name}.log").read_text()[-3000:]
    return {
        case: {
            f"{name}/{key}": value
            for name in envs
            for key, value in np.load(folder / f"{name}-{case}.npz").items()
        }
        for case in CASES
    }


@pytest.mark.parametrize("case", CASES)
def test_two_workers_train_like_one_device(runs, case):
    results = {**runs[case], "groups": runs[case]["single/groups"]}
    assert_same_training(results, "single", "worker0")
    # The two workers apply the same all-reduced gradients: the same bits.
    for key in (k for k in results if k.startswith("worker0/gradient/")):
        np.testing.assert_array_equal(results[key], results[key.replace("0/", "1/", 1)])


def test_an_app_on_two_workers_writes_once_and_resumes_after_a_kill(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "apps.train_classifier", "--pair", "digits-demo"]
    command += ["--strategy", "multiworker", "--epochs", "3", "--out", str(out)]

    def launch(tag: str) -> tuple[list[subprocess.Popen], list]:
        ports = free_ports(2)
        logs = [open(tmp_path / f"{tag}-{i}.log", "w") for i in range(2)]  # noqa: SIM115
        return [start(command, worker_env(ports, i), logs[i]) for i in range(2)], logs

    workers, _ = launch("first")
    state = out / "checkpoints" / "resume" / "state.json"
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and not state.exists():
        assert all(w.poll() is None for w in workers), (tmp_path / "first-0.log").read_text()
        time.sleep(0.2)
    workers[1].send_signal(signal.SIGKILL)  # a machine is lost
    try:
        workers[0].wait(60)  # its collectives fail, or it waits for the lost peer
    except subprocess.TimeoutExpired:
        workers[0].send_signal(signal.SIGKILL)
    workers[0].wait()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 3

    workers, _ = launch("again")  # the same command on both machines
    for i, worker in enumerate(workers):
        assert worker.wait(TIMEOUT) == 0, (tmp_path / f"again-{i}.log").read_text()[-3000:]
    chief, other = ((tmp_path / f"again-{i}.log").read_text() for i in range(2))
    assert f"after epoch {done}" in chief and "worker 0 of 2 machines" in chief
    assert "worker 1 of 2 machines" in other
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert np.isfinite(history["val_loss"]).all()
    assert (out / "checkpoints" / "best.keras").exists()
    assert not list(out.rglob(".tmp-*"))


def test_a_worker_that_is_not_the_chief_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_writing", True)  # restored after the test
    (tmp_path / "kept.txt").write_text("the chief's")
    files.stop_writing()
    files.write_json(tmp_path / "run" / "config.json", {"a": 1})
    files.write_npz(tmp_path / "samples.npz", x=np.zeros(2))
    with files.atomic_path(tmp_path / "best.keras") as scratch:
        scratch.write_text("weights")
    files.remove(tmp_path / "kept.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "--strategy multiworker: set TF_CONFIG on every machine"),
        ("{", "TF_CONFIG: expected"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "expected"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "index 1"),
    ],
)
def test_tf_config_is_checked_with_a_clear_message(config, message):
    with pytest.raises(InputError, match=message):
        cluster_task(config)
    task = cluster_task('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", '
                        '"index": 1}}')  # fmt: skip
    assert task == {"type": "worker", "index": 1, "workers": 2}
