"""Import CompressAI without its point-cloud code, PyTorch Geometric, torchvision, pandas and
scipy.stats (start-up time; issue 17 item 6).

CompressAI 1.2.8's ``__init__`` imports its point-cloud modules (``compressai.datasets.pointcloud``:
PyG and pandas; ``compressai.transforms.point``: PyG) and ``compressai.registry.transforms``, which
fills a name -> class table from ``torchvision.transforms`` and ``torch_geometric.transforms``. PyG
and torchvision both import ``torch._dynamo`` (and with it sympy): together most of a ``cosmic``
command's start-up (``python -X importtime``; figures in docs/RESULTS.md), and none of it is used
here. COSMIC uses CompressAI's entropy models, GDN, conv helpers, ``CompressionModel`` and rANS
coder: those modules are CompressAI's own, imported unchanged.

How: :func:`install` (called by ``import cosmic``; it costs nothing) puts a finder on
``sys.meta_path`` that waits for the first ``import compressai``, takes itself off, and runs
CompressAI's own ``__init__`` with empty stand-ins (:data:`STAND_INS`) in ``sys.modules``: its two
point-cloud packages, ``torchvision`` / ``torch_geometric`` with their ``transforms`` for the
registry, and ``scipy.stats`` (used by CompressAI only to rebuild entropy tables, ``update()``;
loading a model does not: it is imported for real then, through ``scipy``'s lazy submodules, SciPy
>= 1.9). The stand-ins leave ``sys.modules`` as soon as that import ends. Where we depart from
CompressAI: ``compressai.registry.TRANSFORMS`` holds only CompressAI's own transforms (not
torchvision's or PyG's), and ``compressai.datasets`` / ``compressai.transforms`` lack the point-cloud
names until ``compressai.datasets.pointcloud`` / ``compressai.transforms.point`` are imported
explicitly (that import is the real one, and registers them). A later ``import torchvision`` or
``import torch_geometric`` gets the real package.

Nothing is stood in for when ``torch_geometric`` was imported first, with ``COSMIC_REAL_COMPRESSAI=1``
in the environment, or when CompressAI's import fails with the stand-ins (a CompressAI that needs
more of them: the import is then redone for real); ``torchvision`` is not stood in for once imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import types

__all__ = ["install", "uninstall", "STAND_INS"]

#: the modules stood in for while CompressAI is imported (each unless already imported): its
#: point-cloud packages, what its transform registry reads (no upper-case names in a stand-in: the
#: registry takes none from it), and scipy.stats (``import scipy.stats`` binds the real ``scipy``,
#: whose ``__getattr__`` imports the real ``scipy.stats`` when an entropy table is first rebuilt)
STAND_INS = ("compressai.datasets.pointcloud", "compressai.transforms.point", "torch_geometric",
             "torch_geometric.transforms", "torchvision", "torchvision.transforms", "scipy.stats")
_OPT_OUT = "COSMIC_REAL_COMPRESSAI"


def _stand_ins() -> dict[str, types.ModuleType]:
    mods = {}
    for name in STAND_INS:
        if name not in sys.modules:
            mods[name] = types.ModuleType(name, "stand-in of cosmic.utils.compressai_import")
            mods[name].__all__, mods[name].__path__ = [], []  # a package: what is not stood in fails
    for name, module in mods.items():
        parent, _, child = name.rpartition(".")
        if parent in mods:
            setattr(mods[parent], child, module)
    return mods


class _Loader(importlib.abc.Loader):
    """CompressAI's own loader, run with the stand-ins in ``sys.modules``; again without them if
    that import fails."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        import torch  # noqa: F401  (CompressAI's first import anyway; torch's own runs without stand-ins)

        module.__loader__ = module.__spec__.loader = self.loader
        stand_ins = _stand_ins()
        sys.modules.update(stand_ins)
        try:
            self.loader.exec_module(module)
        except ImportError:
            _forget(stand_ins)
            for name in [n for n in sys.modules if n.startswith("compressai.")]:
                del sys.modules[name]
            self.loader.exec_module(module)  # for real
        finally:
            _forget(stand_ins)


def _forget(stand_ins: dict[str, types.ModuleType]) -> None:
    for name, module in stand_ins.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]


class _Finder(importlib.abc.MetaPathFinder):
    """Waits for ``import compressai``, then takes itself off ``sys.meta_path``."""

    def find_spec(self, name, path=None, target=None):
        if name != "compressai":
            return None
        uninstall()
        if "torch_geometric" in sys.modules or os.environ.get(_OPT_OUT, "") not in ("", "0"):
            return None
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Arrange for the next ``import compressai`` to run with the stand-ins (a no-op once CompressAI
    is imported, or if already installed)."""
    if "compressai" not in sys.modules and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def uninstall() -> None:
    """Undo :func:`install` (the next ``import compressai`` is the plain one)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]
