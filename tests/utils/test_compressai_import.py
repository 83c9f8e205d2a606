"""cosmic.utils.compressai_import: CompressAI imported without its point-cloud code, PyG or
torchvision still codes the golden bitstream, and the real packages stay importable afterwards.
Each case runs in a fresh interpreter (the arrangement acts on the first ``import compressai``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from helpers import FIXTURES, HERE, REPO, TINY_MODEL

HEAVY = ("torch_geometric", "torchvision", "torch._dynamo", "pandas", "sympy", "scipy.stats")


def _run(code: str, **env) -> str:
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env}, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


_CODE = f"""
    import hashlib, sys
    sys.path.insert(0, {str(HERE)!r})
    import cosmic
    from cosmic.zoo import load_model
    from helpers import golden_image
    data = cosmic.compress(golden_image(), model={str(TINY_MODEL)!r})
    print(hashlib.sha256(data).hexdigest())
    print(hashlib.sha256(cosmic.decompress(data, model={str(TINY_MODEL)!r}).tobytes()).hexdigest())
    print([m for m in {HEAVY!r} if m in sys.modules])
    import compressai.entropy_models as em
    print(em.GaussianConditional.__module__)
    model = load_model({str(TINY_MODEL)!r})
    model.update(force=True)  # rebuilds the entropy tables: scipy.stats, imported for real now
    print("scipy.stats" in sys.modules, type(sys.modules["scipy.stats"].norm).__name__)
"""


def test_golden_bitstream_and_decode_without_point_clouds():
    light = _run(_CODE).splitlines()
    real = _run(_CODE, COSMIC_REAL_COMPRESSAI="1").splitlines()
    assert light[0] == real[0] == (FIXTURES / "golden.txt").read_text().strip()
    assert light[1] == real[1]  # the same decoded pixels
    assert light[2] == "[]" and "torch_geometric" in real[2]
    assert light[3] == "compressai.entropy_models.entropy_models"
    assert light[4] == "True norm_gen"


def test_real_packages_import_afterwards():
    out = _run("""
        import sys, cosmic, compressai
        from compressai.registry import TRANSFORMS
        print(sorted(k for k in TRANSFORMS if k in ("Center", "ToTensor")), hasattr(compressai.datasets, "ModelNetDataset"))
        import torch_geometric.transforms, torchvision.transforms, compressai.transforms.point
        print(torch_geometric.transforms.Center.__module__, torchvision.transforms.ToTensor.__module__)
        print(compressai.transforms.point.RandomSample.__mro__[1].__module__, "RandomSample" in TRANSFORMS)
    """).splitlines()
    assert out[0] == "[] False"
    assert out[1] == "torch_geometric.transforms.center torchvision.transforms.transforms"
    assert out[2] == "torch_geometric.transforms.base_transform True"


def test_opt_out_and_fallback_import_everything():
    show = "print(sorted(k for k in compressai.registry.TRANSFORMS if k in ('Center', 'ToTensor')))\n"
    assert _run("import cosmic, compressai\n" + show, COSMIC_REAL_COMPRESSAI="1") == "['Center', 'ToTensor']"
    # a CompressAI needing more than the stand-ins give: torchvision stood in, torchvision.transforms not
    fallback = ("import cosmic.utils.compressai_import as ci\n"
                "ci.STAND_INS = tuple(n for n in ci.STAND_INS if n != 'torchvision.transforms')\n"
                "import compressai\n")
    assert _run(fallback + show) == "['Center', 'ToTensor']"
