"""Import every strategy module so that each registers itself."""

from . import agcn, csc, derpp, er, ewc, finetune, joint, krt, l2p, lwf, podnet, rebll  # noqa: F401
