"""The labelwise version (kept in its own module so any layer can read it without importing the facade).

Examples
--------
>>> from labelwise._version import __version__
>>> __version__.count(".") >= 1
True
"""

__version__ = "0.1.0"
