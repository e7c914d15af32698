"""numaprobe's version, written here only: the package metadata reads it at build time
(pyproject.toml, scikit-build-core's regex provider) and numaprobe.__version__ re-exports it.
Modules import it from here (``from ._version import __version__``), never from the package,
so importing any submodule does not depend on numaprobe/__init__.py having run to its end."""
__version__ = "0.1.0"
