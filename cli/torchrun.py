"""``gantk train --nproc N``: the same command in N processes on this machine, started by torchrun.

It runs ``torchrun --standalone --nproc-per-node N -m gantk train …`` (through
:mod:`torch.distributed.run`, in this process) with the other options unchanged. torchrun's own
logging and its traceback on failure are left out: each failing rank has printed its paragraph,
and the command exits with the code of the rank that failed first.
"""

from __future__ import annotations

import logging


def train_in_processes(nproc: int, arguments: list[str]) -> int:
    """Run ``gantk <arguments>`` in ``nproc`` ranks on this machine; the exit code of the first rank that failed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # the ranks speak for themselves
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "gantk",
                                         *arguments])
    try:
        run(args)
    except ChildFailedError as failed:
        _, failure = failed.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 1  # a rank killed by a signal: 1
    return 0
