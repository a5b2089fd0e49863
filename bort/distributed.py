"""The one place that talks to Horovod.

`init_distributed(True)` starts Horovod (launched by `horovodrun`); `init_distributed(False)` returns a
single-process stand-in with the same interface, so training code never branches on Horovod and runs
without it installed.
"""
import dataclasses
import os

from .errors import ConfigError


@dataclasses.dataclass
class SingleProcess:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        return self.rank == 0

    def broadcast_parameters(self, block):
        pass

    def allreduce_gradients(self, params):
        pass

    def allreduce_mean(self, values):
        """Mean of a list of floats over workers."""
        return list(values)

    def allreduce_sum(self, values):
        return list(values)

    def barrier(self):
        pass

    def shard(self, items):
        """This worker's share of a list (every worker gets items[rank::size])."""
        return items[self.rank::self.size]

    def gather_shares(self, count, width, mine):
        """Per-item results computed in shares, on every worker: `mine` maps item index -> `width` floats
        (this worker's items only, each item computed by exactly one worker); returns `count` lists of floats."""
        slots = [0.0] * (count * width)
        for index, values in mine.items():
            slots[index * width:(index + 1) * width] = [float(v) for v in values]
        summed = self.allreduce_sum(slots)
        return [list(summed[index * width:(index + 1) * width]) for index in range(count)]


class HorovodProcess(SingleProcess):
    def __init__(self):
        try:
            import horovod.mxnet as hvd
        except ImportError as err:
            raise ConfigError("distributed training needs Horovod built with MXNet support "
                              f"(pip install '.[dist]', see README): {err}") from None
        hvd.init()
        self._hvd = hvd
        super().__init__(rank=hvd.rank(), size=hvd.size(), local_rank=hvd.local_rank())

    def broadcast_parameters(self, block):
        params = {name: p for name, p in block._collect_params_with_prefix().items()}
        # Tied parameters appear under two names; broadcast each tensor once.
        unique, seen = {}, set()
        for name, param in sorted(params.items()):
            if id(param) not in seen:
                seen.add(id(param))
                unique[name] = param
        self._hvd.broadcast_parameters(unique, root_rank=0)

    def allreduce_gradients(self, params):
        """Average every gradient across workers, in place (so each worker applies the same update)."""
        if self.size == 1:
            return
        for index, param in enumerate(params):
            if param.grad_req == "null":
                continue
            grad = param.list_grad()[0]
            self._hvd.allreduce_(grad, average=True, name=f"grad.{index}")

    def _allreduce(self, values, average):
        import mxnet as mx
        tensor = mx.nd.array(list(values), dtype="float64")
        return self._hvd.allreduce(tensor, average=average, name="scalars").asnumpy().tolist()

    def allreduce_mean(self, values):
        return self._allreduce(values, True)

    def allreduce_sum(self, values):
        return self._allreduce(values, False)

    def barrier(self):
        self._allreduce([0.0], False)


def launcher_local_rank(environ=None):
    """This process's index on its machine when a launcher (horovodrun, mpirun) started several, else 0."""
    environ = os.environ if environ is None else environ
    for name in ("HOROVOD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"):
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return 0


def init_distributed(use_horovod):
    """Horovod, or a single process. A single process started by a multi-process launcher (e.g. an extraction
    rank distilling its own candidates) still takes its own device: local_rank is the launcher's."""
    return HorovodProcess() if use_horovod else SingleProcess(local_rank=launcher_local_rank())
