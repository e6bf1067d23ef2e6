"""Data parallelism over MPI: N processes train one network exactly as one process would.

    pip install -e ".[mpi]"                                     # mpi4py and the mpich wheel
    mpiexec -n 2 minicnn train --parallel data ...              # or, from Python, a Group below

Every process (an MPI *rank*) holds the whole network. Each global batch of B images is cut into N
equal parts in its global order; rank r takes images r*B/N .. (r+1)*B/N - 1 (``Group.share``).
Each rank runs the forward and backward of its part, with

- the loss of its part divided by B, not by B/N (``F.cross_entropy(...) * (B/N) / B``), so that the
  ranks' gradients add up to the gradient of the whole batch's mean loss;
- its dropout masks and augmentation draws taken at its images' global positions (``nn.Dropout``'s
  ``batch_offset``; the trainer draws the whole batch's random numbers and keeps its part's), so
  that every image sees what it would see in one process;

then the gradients are summed over the ranks with MPI's allreduce, in a few large buckets of at
most ``BUCKET_BYTES`` (one call per bucket, not per tensor: AlexNet's 16 parameter tensors, 244 MB,
go in 4 calls), and every rank applies the same optimiser step to the same sums, so the weights stay
identical on every rank. What differs from one process is only the order of the floating-point
additions inside the gradient sums: float64 runs agree with one process to 1e-10 and float32 runs to
the bound docs/scaling.md states (tests/test_distributed.py checks both).

Every collective call waits with a deadline (``timeout``): a rank that stops answering makes the
others raise ``DistributedError`` instead of hanging. A rank that raises alone calls ``abort``, which
stops all of them at once (MPI_Abort); an error every rank raises at the same call (``agree``'s) ends
each rank on its own; mpiexec stops the others when one dies.

Also here: ``sync_batch_norm`` (batch norm over the whole global batch: ``--sync-bn``),
``GradientReducer`` (the sums started during the backward; the same bits, measured not to pay on
one 2-core machine), and the point-to-point and gather calls the paper's two towers use
(minicnn/towers.py). docs/scaling.md has the design and the measurements.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .autograd import Function
from .errors import ArgumentError, MiniCNNError
from .tensor import Tensor

BUCKET_BYTES = 64 << 20
DEFAULT_TIMEOUT = 300.0  # seconds a collective call waits (the first step compiles for a minute on a slow machine)
INSTALL_HINT = "pip install 'minicnn[mpi]' (mpi4py and the mpich wheel), then start with mpiexec -n N"


class DistributedError(MiniCNNError):
    """A collective call failed: another rank stopped, hung or disagreed. ``on_every_rank``: every
    rank raised this same error at the same call (a disagreement all of them see), so each can end
    on its own instead of stopping the others."""

    def __init__(self, message, on_every_rank=False):
        super().__init__(message)
        self.on_every_rank = on_every_rank


def mpi():
    """mpi4py's MPI module (importing it starts MPI); a one-line error where it is not installed."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ArgumentError(f"--parallel needs MPI: {INSTALL_HINT}") from None
    return MPI


class Group:
    """The processes of a data-parallel run (MPI's COMM_WORLD unless another communicator is given)."""

    def __init__(self, comm=None, timeout=DEFAULT_TIMEOUT):
        self.MPI = mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout)
        self.bytes_sent = 0  # gradient bytes this rank handed to allreduce (docs/scaling.md's cost model)

    # -- the batch ----------------------------------------------------------------------------
    def share(self, batch_size):
        """(first, count): the images of a global batch this rank takes."""
        if batch_size % self.size:
            raise ArgumentError(f"--parallel data: the batch size {batch_size} must be a multiple of the number of "
                                f"processes ({self.size}), so that every rank takes an equal part of each batch")
        count = batch_size // self.size
        return self.rank * count, count

    # -- collectives, each with a deadline ---------------------------------------------------------
    def _wait(self, request, what):
        deadline = time.monotonic() + self.timeout
        pause = 1e-5
        while not request.Test():
            if time.monotonic() > deadline:
                raise DistributedError(f"rank {self.rank}: no answer from the other ranks for {self.timeout:g} s "
                                       f"during {what} (a rank stopped, hung or is far behind)")
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)

    def allreduce(self, arrays, what="the gradient sum"):
        """Sum each (C-contiguous) array over the ranks, in place, in buckets of at most BUCKET_BYTES
        of one dtype; returns the arrays."""
        by_dtype = {}
        for a in arrays:
            if not a.flags.c_contiguous:
                raise ValueError("Group.allreduce: arrays must be C-contiguous (they are summed in place)")
            by_dtype.setdefault(a.dtype, []).append(a)
        for dtype, members in by_dtype.items():
            limit = max(1, BUCKET_BYTES // dtype.itemsize)
            bucket, size = [], 0
            for a in members:
                if bucket and size + a.size > limit:
                    self._sum_bucket(bucket, what)
                    bucket, size = [], 0
                bucket.append(a)
                size += a.size
            if bucket:
                self._sum_bucket(bucket, what)
        return arrays

    def _sum_bucket(self, bucket, what):
        flat, request = self.start_sum(bucket)
        self._wait(request, what)
        self.unpack(bucket, flat)

    def start_sum(self, arrays):
        """Copy ``arrays`` into one flat buffer and start its allreduce: (buffer, request)."""
        flat = np.concatenate([a.reshape(-1) for a in arrays]) if len(arrays) > 1 else arrays[0].reshape(-1).copy()
        self.bytes_sent += flat.nbytes
        return flat, self.comm.Iallreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)

    @staticmethod
    def unpack(arrays, flat):
        """Copy the summed buffer back into ``arrays``, in order."""
        start = 0
        for a in arrays:
            a.reshape(-1)[...] = flat[start:start + a.size]
            start += a.size

    def sum_values(self, values, what="the step's statistics"):
        """Sum a few numbers over the ranks (float64); returns them."""
        flat = np.array(values, dtype=np.float64)
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM), what)
        return flat

    def allgather(self, array, what="gathering activations"):
        """Every rank's ``array`` (all of one shape), stacked in rank order: (size, *shape)."""
        array = np.ascontiguousarray(array)
        received = np.empty((self.size, *array.shape), dtype=array.dtype)
        self._wait(self.comm.Iallgather(array, received), what)
        self.bytes_sent += array.nbytes
        return received

    def reduce_scatter(self, parts, what="summing gradients"):
        """``parts`` (size, *shape): rank r gets the sum over the ranks of their parts[r]."""
        parts = np.ascontiguousarray(parts)
        received = np.empty(parts.shape[1:], dtype=parts.dtype)
        self._wait(self.comm.Ireduce_scatter_block(parts, received, op=self.MPI.SUM), what)
        self.bytes_sent += parts.nbytes - received.nbytes
        return received

    def exchange(self, array, peer, what="exchanging edges"):
        """Send ``array`` to rank ``peer`` and receive its array of the same shape."""
        array = np.ascontiguousarray(array)
        received = np.empty_like(array)
        requests = [self.comm.Irecv(received, source=peer), self.comm.Isend(array, dest=peer)]
        for request in requests:
            self._wait(request, what)
        self.bytes_sent += array.nbytes
        return received

    def agree(self, text, what):
        """Raise on every rank unless all ranks hold the same ``text`` (a run's settings, say)."""
        request = self.comm.Iallgather(np.frombuffer(_digest(text), dtype=np.uint8).copy(),
                                       received := np.empty((self.size, 32), dtype=np.uint8))
        self._wait(request, f"comparing {what}")
        differing = [r for r in range(self.size) if not np.array_equal(received[r], received[0])]
        if differing:
            raise DistributedError(f"ranks {differing} were started with other {what} than rank 0; every rank must "
                                   "run the same command", on_every_rank=True)

    def abort(self, code=1):
        """Stop every rank now (after a rank's error has been printed); does not return."""
        self.comm.Abort(code)
        # MPICH's MPI_Abort can return while mpiexec tears the ranks down (seen: 1 run in 5), and the
        # caller would go on to print a traceback; end this process here instead.
        os._exit(code)


class GradientReducer:
    """Sums the gradients over the ranks while the backward runs: ``add`` is the backward's
    ``on_leaf`` hook, called as each parameter's gradient becomes final (the last layers' first);
    a bucket of at least BUCKET_BYTES starts its allreduce (non-blocking) at once, and every later
    call lets the ones in flight progress; ``finish`` starts the rest, waits and copies the sums back.
    The buckets are formed in the order the gradients complete, the same on every rank."""

    def __init__(self, group, parameters):
        self.group = group
        self.wanted = {id(p) for p in parameters}
        self.bucket, self.size, self.in_flight = [], 0, []

    def add(self, tensor):
        if id(tensor) not in self.wanted or tensor.grad is None:
            return
        self.bucket.append(tensor)
        self.size += tensor.grad.nbytes
        if self.size >= BUCKET_BYTES:
            self._start()
        for _, _, request in self.in_flight:
            request.Test()  # MPI advances a non-blocking sum only inside its calls

    def _start(self):
        if not self.bucket:
            return
        grads = [t.grad for t in self.bucket]
        flat, request = self.group.start_sum(grads)
        self.in_flight.append((grads, flat, request))
        self.bucket, self.size = [], 0

    def finish(self):
        self._start()
        for grads, flat, request in self.in_flight:
            self.group._wait(request, "the gradient sum")
            self.group.unpack(grads, flat)
        self.in_flight = []


def _digest(text):
    import hashlib

    return hashlib.sha256(text.encode()).digest()


def world(timeout=DEFAULT_TIMEOUT):
    """The Group of all processes mpiexec started."""
    return Group(timeout=timeout)


# ---- synchronised batch norm -------------------------------------------------------------------
def sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps, group):
    """Training-mode batch norm over the whole global batch: each channel's mean and variance from
    every rank's part (two sums over the ranks: the means, then the squared deviations from them),
    and in the backward the two per-channel sums of the gradient likewise; the rest is the
    one-process formula (kernels/reference/batchnorm.py). The parameters' gradients stay this rank's
    sums, for the gradient allreduce to add up like every other gradient."""
    from .kernels import backends

    kernels = backends.for_device(x.device)
    w = weight if weight is not None else Tensor(np.ones(x.shape[1], dtype=x.dtype))
    b = bias if bias is not None else Tensor(np.zeros(x.shape[1], dtype=x.dtype))
    return _SyncBatchNorm.apply(x, w, b, running_mean, running_var, momentum, eps, group, kernels)


def _per_channel(a):
    return a.reshape(a.shape[0], a.shape[1], -1)


class _SyncBatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, group, kernels):
        x3 = _per_channel(x)
        count = x3.shape[0] * x3.shape[2]
        sums = group.sum_values([count, *x3.sum(axis=(0, 2), dtype=np.float64)], "batch norm's means")
        total, mean = sums[0], sums[1:] / sums[0]
        deviations = ((x3 - mean[None, :, None].astype(x.dtype)) ** 2).sum(axis=(0, 2), dtype=np.float64)
        var = group.sum_values(deviations, "batch norm's variances") / total
        mean, var = mean.astype(x.dtype), var.astype(x.dtype)
        y = kernels.batchnorm.batch_norm_eval_forward(x, mean, var, weight, bias, eps)
        if running_mean is not None:
            kernels.batchnorm.update_running_stats(running_mean, running_var, mean, var, momentum, int(total))
        ctx.save_for_backward(x, mean, var, weight, eps, total, group, kernels)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, mean, var, weight, eps, total, group, kernels = ctx.saved
        # the eval-mode backward: weight * invstd * grad_y, and this rank's sums of grad_y * xhat and grad_y
        grad_x, grad_weight, grad_bias = kernels.batchnorm.batch_norm_backward(x, mean, var, weight, grad_y, eps, False)
        channels = len(mean)
        sums = group.sum_values([*grad_weight, *grad_bias], "batch norm's gradient sums")
        all_weight, all_bias = sums[:channels], sums[channels:]
        invstd = 1 / np.sqrt(var.astype(np.float64) + eps)
        xhat = (_per_channel(x) - mean[None, :, None]) * invstd[None, :, None]
        scale = (weight.astype(np.float64) * invstd / total)[None, :, None]
        grad_x = _per_channel(grad_x) - scale * (all_bias[None, :, None] + xhat * all_weight[None, :, None])
        return grad_x.reshape(x.shape).astype(x.dtype), grad_weight, grad_bias, None, None, None, None, None, None
