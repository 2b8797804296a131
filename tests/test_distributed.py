"""Data-parallel training over MPI: the collectives, DistributedDataParallel, DistributedSampler and
the failure behaviour, run as real ``mpiexec -n 2`` jobs of ``distributed_worker.py`` (skipped, with
the reason, without mpi4py or mpiexec); the pieces that need no MPI run in this process."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import types

import numpy as np
import pytest

import tinygrad_rnn as tr
import distributed_worker as worker
from tinygrad_rnn.utils.data import DataLoader, DistributedSampler, TensorDataset

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")
REPO = os.path.dirname(os.path.dirname(WORKER))


def _mpiexec():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else shutil.which("mpiexec")


def _skip_reason():
    if importlib.util.find_spec("mpi4py") is None:
        return 'needs mpi4py: pip install "tinygrad_rnn[distributed]"'
    if _mpiexec() is None:
        return "needs mpiexec next to the Python executable or on PATH (the mpich wheel provides one)"
    return None


needs_mpi = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def run_job(mode, out_dir, timeout_s=None, ranks=2):
    """``mpiexec -n RANKS python distributed_worker.py MODE OUT_DIR``: (completed process, seconds,
    each rank's JSON or None)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    if timeout_s is not None:
        env["WORKER_TIMEOUT"] = str(timeout_s)
    start = time.monotonic()
    done = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, WORKER, mode, str(out_dir)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    took = time.monotonic() - start
    results = []
    for rank in range(ranks):
        path = os.path.join(out_dir, f"rank{rank}.json")
        results.append(json.load(open(path)) if os.path.exists(path) else None)
    return done, took, results


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 2-rank job that checks the collectives and samplers and trains with SGD and Adam."""
    done, _, results = run_job("train", tmp_path_factory.mktemp("train"))
    assert done.returncode == 0, done.stdout + done.stderr
    return results


# --------------------------------------------------------------------------- collectives
@needs_mpi
def test_all_reduce_broadcast_barrier_and_all_gather_give_the_same_values_on_every_rank(trained):
    for rank, out in enumerate(trained):
        assert (out["rank"], out["world"], out["main"]) == (rank, 2, rank == 0)
        got = out["collectives"]
        assert got["SUM"] == [3.0, -6.0, 6.0]
        assert got["AVG"] == [1.5, -3.0, 3.0]
        assert got["MAX"] == [2.0, -2.0, 3.0]
        assert got["MIN"] == [1.0, -4.0, 3.0]
        assert got["broadcast"] == [[11, 12]]  # rank 1's values
        assert got["strided"] == (2 * np.arange(6.0).reshape(2, 3).T).tolist()
        assert got["objects"] == [{"rank": 0}, {"rank": 1}]


@needs_mpi
def test_device_tensors_reduce_both_staged_through_the_host_and_passed_directly(trained):
    for out in trained:
        for aware in (False, True):
            assert out["collectives"][f"hostless_cuda_aware_{aware}"] == ["HostlessArray", [1.5, 2.0]]


def test_transport_choice_and_the_one_log_line(caplog):
    from hostless_backend import HostlessArray
    from tinygrad_rnn.distributed import transport

    assert transport.choose("cpu", cuda_aware=False) == transport.HOST
    transport._logged.clear()
    with caplog.at_level(logging.INFO, logger="tinygrad_rnn.distributed"):
        assert transport.choose("cuda:0", cuda_aware=True) == transport.DEVICE
        assert transport.choose("cuda:0", cuda_aware=True) == transport.DEVICE
        assert transport.choose("cuda:1", cuda_aware=False) == transport.STAGED
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "CUDA-aware" in messages[0] and "host memory" in messages[1]

    for aware, kind in ((False, transport.STAGED), (True, transport.DEVICE)):
        t = tr.tensor([1.0, 2.0], device="hostless")
        buffer = transport.Buffer(t, types.SimpleNamespace(cuda_aware=aware, MPI=None))
        assert buffer.kind == kind
        assert type(buffer.array) is (np.ndarray if kind == transport.STAGED else HostlessArray)
        buffer.array *= 3  # what MPI would write
        buffer.finish()
        assert type(t.array) is HostlessArray and t.numpy().tolist() == [3.0, 6.0]


# --------------------------------------------------------------------------- DistributedDataParallel
@needs_mpi
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_with_batch_b_train_like_one_process_with_batch_2b(trained, optimizer):
    expected = worker.reference(optimizer, world_size=2)
    for out in trained:
        assert out[f"buckets_{optimizer}"] > 1  # the tiny bucket cap splits the gradients
        assert out[f"keys_{optimizer}"] == ["module.cell.weight_ih", "module.cell.weight_hh"]  # PyTorch's prefix
        for name, value in expected.items():
            np.testing.assert_allclose(out[optimizer][name], value, rtol=0, atol=1e-10, err_msg=name)


@needs_mpi
def test_no_sync_accumulates_locally_and_the_next_backward_averages_the_sum(trained):
    x, y = worker.data(2 * worker.BATCH)
    expected = None
    for rank in range(2):  # each rank's two micro-batches in one process, then the mean over the ranks
        tr.manual_seed(100)
        mine = slice(rank * worker.BATCH, (rank + 1) * worker.BATCH)
        grads = worker.micro_batch_grads(worker.TinyRNN().double(), x[mine], y[mine])
        grads = {k: np.array(v) / 2 for k, v in grads.items()}
        expected = grads if expected is None else {k: expected[k] + grads[k] for k in grads}
    for out in trained:
        for name, value in expected.items():
            np.testing.assert_allclose(out["no_sync"][name], value, rtol=0, atol=1e-12, err_msg=name)


@needs_mpi
def test_a_parameter_left_out_of_the_loss_is_named_and_sync_gradients_finishes(trained):
    for out in trained:
        got = out["unused"]
        assert "left parameters ['unused.weight', 'unused.bias'] without a gradient" in got["message"]
        assert got["unused_grad"] == np.zeros((2, worker.FEATURES)).tolist()
    np.testing.assert_array_equal(trained[0]["unused"]["used_grad"], trained[1]["unused"]["used_grad"])


@needs_mpi
def test_a_model_that_differs_across_ranks_is_named_at_construction(tmp_path):
    done, _, results = run_job("mismatch", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for out in results:
        assert "parameter '1.weight'" in out["error"]
        assert "rank 0 has shape (2, 4)" in out["error"] and "rank 1 has shape (2, 5)" in out["error"]


# --------------------------------------------------------------------------- failures
@needs_mpi
def test_a_rank_that_raises_ends_every_rank_quickly_and_is_named(tmp_path):
    done, took, results = run_job("crash", tmp_path)
    assert done.returncode != 0 and took < 15
    assert "rank 1 failed: ValueError: boom on purpose" in done.stdout + done.stderr
    assert results == [None, None]


@needs_mpi
def test_a_collective_a_rank_skips_times_out_with_a_distributed_error(tmp_path):
    done, took, results = run_job("timeout", tmp_path, timeout_s=1)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and took < 15
    assert "rank 0 failed: DistributedError: all_reduce: timed out after 1 s on rank 0 of ranks 0..1" in output
    assert results == [None, None]


# --------------------------------------------------------------------------- samplers
@needs_mpi
def test_the_sampler_takes_the_rank_from_the_group_and_the_shares_are_disjoint(trained):
    shares = [out["samplers"] for out in trained]
    for key in shares[0]:
        n, shuffle, drop_last = key.split("-")
        n = int(n)
        for epoch in (0, 1):
            a, b = shares[0][key][epoch], shares[1][key][epoch]
            assert len(a) == len(b)
            if n % 2 == 0 or drop_last == "True":
                assert not set(a) & set(b)
            if drop_last == "False":
                assert set(a) | set(b) == set(range(n))
        if shuffle == "True" and n > 3:
            assert shares[0][key][0] != shares[0][key][1]  # set_epoch gives a new order


@pytest.mark.parametrize("n", [10, 11, 3, 1])
@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_the_sampler_partitions_like_pytorch(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for shuffle in (False, True):
        ours = [list(DistributedSampler(range(n), replicas, r, shuffle=shuffle, drop_last=drop_last))
                for r in range(replicas)]
        theirs = [list(torch_data.DistributedSampler(range(n), replicas, r, shuffle=shuffle, drop_last=drop_last))
                  for r in range(replicas)]
        if not shuffle:
            assert ours == theirs
        else:  # different generators, so different orders: the same lengths and the same repetition counts
            assert [len(o) for o in ours] == [len(t) for t in theirs]
            assert sorted(np.bincount(sum(ours, []), minlength=n)) == sorted(np.bincount(sum(theirs, []), minlength=n))


def test_the_sampler_checks_its_arguments_and_is_repeatable():
    with pytest.raises(ValueError, match=r"DistributedSampler: invalid rank 2, expected one in \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    sampler = DistributedSampler(range(20), num_replicas=2, rank=0, seed=3)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    other = DistributedSampler(range(20), num_replicas=2, rank=1, seed=3)
    other.set_epoch(1)
    assert sorted(second + list(other)) == list(range(20))


def test_the_data_loader_reads_the_samplers_indices():
    dataset = TensorDataset(tr.arange(10) * 10)
    sampler = DistributedSampler(dataset, num_replicas=3, rank=1, shuffle=False)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler)
    assert len(loader) == 2
    assert [b[0].tolist() for b in loader] == [[10, 40], [70, 0]]
    assert tr.utils.data.distributed.DistributedSampler is DistributedSampler
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(dataset, sampler=sampler, shuffle=True)


# --------------------------------------------------------------------------- the hook DDP runs on
def test_a_post_accumulate_grad_hook_sees_the_whole_gradient_once():
    w = tr.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.tolist()))
    ((w * w).sum() + (3 * w).sum()).backward()  # two paths into w: one call, after both are summed
    assert seen == [[5.0, 7.0]]
    handle.remove()
    w.sum().backward()
    assert seen == [[5.0, 7.0]] and w.grad.tolist() == [6.0, 8.0]
    with pytest.raises(RuntimeError, match="register_post_accumulate_grad_hook: only a leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)


def test_without_mpi4py_the_framework_imports_and_distributed_names_the_install():
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "import tinygrad_rnn as tr\n"
        "tr.nn.parallel.DistributedDataParallel\n"
        "try:\n    import tinygrad_rnn.distributed\nexcept ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert 'pip install "tinygrad_rnn[distributed]"' in done.stdout


# --------------------------------------------------------------------------- NCCL, tested with fakes
class _FakeNccl:
    """``cupy.cuda.nccl`` as far as NcclTransport uses it: constants, ids, a communicator recording calls."""

    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = "sum", "prod", "max", "min"
    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_UINT8 = "f16", "f32", "f64", "i32", "i64", "u8"

    def __init__(self):
        self.calls, self.ids = [], 0

    def get_unique_id(self):
        self.ids += 1
        return ("uid", self.ids)

    def NcclCommunicator(self, size, uid, rank):  # noqa: N802  (cupy's name)
        fake = self

        class Comm:
            def allReduce(self, send, recv, count, dtype, op, stream):  # noqa: N802
                fake.calls.append(("allReduce", send, recv, count, dtype, op, stream, size, uid, rank))

            def broadcast(self, send, recv, count, dtype, root, stream):
                fake.calls.append(("broadcast", send, recv, count, dtype, root, stream))

        return Comm()


def _fake_array(values):
    array = types.SimpleNamespace(dtype=np.asarray(values).dtype, size=np.asarray(values).size,
                                  data=types.SimpleNamespace(ptr=4096))
    return types.SimpleNamespace(array=array, device="cuda:0")


def test_nccl_transport_shares_rank_0s_id_over_mpi_and_queues_the_calls_on_the_stream():
    from tinygrad_rnn.distributed.nccl import NcclTransport

    for rank in (0, 1):
        sent = []
        comm = types.SimpleNamespace(bcast=lambda obj, root: sent.append(obj) or ("uid", 7))
        group = types.SimpleNamespace(rank=rank, size=2, comm=comm)
        fake = _FakeNccl()
        stream = types.SimpleNamespace(ptr=99, done=True)
        transport = NcclTransport(group, fake, lambda tensor: stream)
        request = transport.all_reduce(_fake_array(np.ones(3, dtype=np.float32)), "avg")
        transport.broadcast(_fake_array(np.ones(2, dtype=np.int64)), 1)
        transport.all_reduce(_fake_array(np.ones(3, dtype=np.float64)), "max")
        assert sent == ([("uid", 1)] if rank == 0 else [None])  # one id, made by rank 0, once per device
        assert fake.calls[0] == ("allReduce", 4096, 4096, 3, "f32", "sum", 99, 2, ("uid", 7), rank)
        assert fake.calls[1] == ("broadcast", 4096, 4096, 2, "i64", 1, 99)
        assert fake.calls[2][4:6] == ("f64", "max")
        assert request.Test() is True


def test_nccl_transport_refuses_a_dtype_nccl_lacks():
    from tinygrad_rnn.distributed.nccl import NcclTransport

    group = types.SimpleNamespace(rank=0, size=1, comm=types.SimpleNamespace(bcast=lambda obj, root: obj))
    transport = NcclTransport(group, _FakeNccl(), lambda tensor: types.SimpleNamespace(ptr=0, done=True))
    with pytest.raises(TypeError, match="NCCL has no complex64"):
        transport.all_reduce(_fake_array(np.ones(2, dtype=np.complex64)), "sum")


def test_collectives_send_device_tensors_through_nccl_and_average_after(monkeypatch):
    """A non-CPU tensor (the hostless test backend) goes to the group's NCCL transport; AVG divides."""
    pytest.importorskip("mpi4py")
    import tinygrad_rnn.distributed as dist
    from tinygrad_rnn.distributed import process_group

    dist.init()
    group = process_group.current("test")
    seen = []

    class Transport:
        def all_reduce(self, tensor, op):
            seen.append(("all_reduce", tensor.device, op))
            tensor.array *= 4  # as if 4 ranks had summed equal values
            return types.SimpleNamespace(Test=lambda: True)

        def broadcast(self, tensor, src):
            seen.append(("broadcast", tensor.device, src))
            return types.SimpleNamespace(Test=lambda: True)

    monkeypatch.setattr(group, "nccl", Transport())
    monkeypatch.setattr(group, "size", 4)
    t = tr.tensor([1.0, 2.0], device="hostless")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    dist.broadcast(t, src=0)
    assert seen == [("all_reduce", "hostless", "avg"), ("broadcast", "hostless", 0)]
    np.testing.assert_allclose(t.cpu().numpy(), [1.0, 2.0])


def test_init_refuses_an_unknown_backend():
    pytest.importorskip("mpi4py")
    import tinygrad_rnn.distributed as dist

    with pytest.raises(ValueError, match="backend must be 'mpi' or 'nccl'"):
        dist.init(backend="gloo")
    with pytest.raises(ValueError, match="the backends are 'mpi' and 'nccl'"):
        dist.init_process_group("gloo")


def test_tr_distributed_is_there_after_import_tinygrad_rnn_as_in_torch():
    pytest.importorskip("mpi4py")
    import importlib

    assert tr.distributed is importlib.import_module("tinygrad_rnn.distributed")
    with pytest.raises(AttributeError, match="has no attribute 'distributd'"):
        tr.distributd  # noqa: B018
