"""On-disk dataset formats (VOC, COCO, NUS-WIDE, CSV/JSON image lists, MULAN ARFF) and the ARFF parser.

Importing this package registers ``voc2007``, ``voc2012``, ``coco2014``, ``nuswide``, ``csv``, ``json`` and
``mulan`` with :func:`labelwise.data.load_dataset`. See ``docs/datasets.md`` for the on-disk layouts.
"""

from . import arff, coco, image_list, mulan, nuswide, pedestrian, voc  # noqa: F401

__all__ = ["arff", "coco", "image_list", "mulan", "nuswide", "voc"]
