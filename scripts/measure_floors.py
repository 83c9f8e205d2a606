"""Measure, on the installed package, what the floor tests check (run after shipping new weights).

    python scripts/measure_floors.py [vr] [gray] [enh] [cenh] [codebook] [dc]

Each part prints the measured values and, where the tests use that rule, the floor the tests take
(bpp x 1.04, PSNR - 0.3 dB). The tests that hold them: tests/zoo/test_shipped.py (vr, gray, dc),
tests/enhance/test_enhance.py (enh, cenh), tests/codebook/test_codebook.py (codebook).
"""
import sys
from importlib import resources

import numpy as np

import cosmic
from cosmic.data import sample_path
from cosmic.evaluation.metrics import detail_energy, psnr
from cosmic.io.images import load_rgb
from cosmic.metadata import load_sidecar, sidecar_for
from cosmic.pipelines import DecodePipeline, EncodePipeline, open_scene
from cosmic.zoo import COMPENSATION_MODEL, load_model, load_onboard

def floor(bpp, db):
    return f"floor ({bpp * 1.04:.4f}, {db - 0.3:.2f})"


def _code(name, scene, quality):
    """(file bytes, steps-0 decode) of ``scene`` through the encode and decode pipelines."""
    (codec, model_name), model = load_onboard(name), load_model(name)
    data = EncodePipeline(codec, model_name).encode(scene, quality=quality).to_bytes()
    return data, DecodePipeline(model, name)(data)


def measure_vr(sample):
    for q in range(1, 7):
        data, dec = _code("cosmic-small-vr", open_scene(sample), float(q))
        bpp, db = len(data) * 8 / (sample.shape[0] * sample.shape[1]), psnr(sample, dec.pixels)
        print(f"vr q{q}: {bpp:.4f} bpp {db:.2f} dB  {floor(bpp, db)}")


def measure_gray(sample):
    band = np.ascontiguousarray(sample[..., 1])
    for q in (1.0, 3.0):
        data = cosmic.compress(band, quality=q)
        bpp, db = len(data) * 8 / band.size, psnr(band, cosmic.decompress(data))
        print(f"gray q{q}: {len(data)} B {bpp:.4f} bpp {db:.2f} dB  {floor(bpp, db)}")


def measure_jpeg2000_enhancer(crop):
    from cosmic.enhance.pipeline import DEFAULT_ENHANCER, EnhancePipeline
    from cosmic.evaluation.classical import jpeg2000_encode

    pipe = EnhancePipeline.from_pretrained(DEFAULT_ENHANCER)
    for ratio in (240.0, 80.0):
        enc = jpeg2000_encode(crop, ratio)
        base = psnr(crop, enc.decoded)
        g0 = psnr(crop, pipe.enhance_array(enc.decoded, enc.bpp)) - base
        g4 = psnr(crop, pipe.enhance_array(enc.decoded, enc.bpp, steps=4, seed=1)) - base
        print(f"j2k enh ratio {ratio}: {enc.bpp:.3f} bpp, J2K {base:.2f} dB, steps0 {g0:+.3f} dB, ldm4 {g4:+.3f} dB")


def measure_cosmic_enhancer(crop):
    from cosmic.enhance.pipeline import EnhancePipeline
    from cosmic.training.ldm_rsic import code_image

    pipe = EnhancePipeline.for_source("cosmic-small-vr")
    for q in (2.0, 5.0):
        decoded, bpp = code_image("cosmic-small-vr", crop, q)
        print(f"cosmic enh q{q}: {bpp:.3f} bpp gain {psnr(crop, pipe.enhance_array(decoded, bpp)) - psnr(crop, decoded):+.3f} dB")


def measure_codebook(sample):
    from cosmic.codebook import load_prior
    from cosmic.ground.postprocess import PostContext

    x = sample[:256, :256].copy()
    model = load_model("cosmic-small-vr")
    data = EncodePipeline(model.onboard, model.name).encode(open_scene(x), quality=1.0).to_bytes()
    dec, prior = DecodePipeline(model, "cosmic-small-vr"), load_prior("codebook-ucm")
    decodes = {"plain": dec(data).pixels, **{f"w{w}": dec(data, post=prior, context=PostContext(fidelity=w)).pixels
                                             for w in (0.0, 0.5, 1.0)},
               "default": dec(data, post=prior).pixels}
    print(f"codebook: original detail {detail_energy(x):.3f}; " + ", ".join(
        f"{k} {psnr(x, y):.3f} dB detail {detail_energy(y):.3f}" for k, y in decodes.items()))


def measure_compensation(sample):
    """The default's diffusion-compensated decode (5 DDIM steps) beside steps 0, with metadata."""
    meta = load_sidecar(sidecar_for(sample_path()))
    pipe = DecodePipeline(load_model(COMPENSATION_MODEL), COMPENSATION_MODEL)
    for q in (1.0, 3.0, 6.0):
        data, plain = _code(COMPENSATION_MODEL, open_scene(sample, metadata=meta), q)
        plain = plain.pixels
        for seed in (0, 1):
            a = pipe(data, steps=5, seed=seed).pixels
            shift = np.abs(a.reshape(-1, 3).mean(0) - plain.reshape(-1, 3).mean(0)).max()
            print(f"dc q{q} seed {seed}: {psnr(sample, a):.2f} dB, steps 0 {psnr(sample, plain):.2f} dB, colour shift {shift:.2f}")


def main(parts):
    sample = load_rgb(sample_path()).pixels
    crop = load_rgb(resources.files("cosmic.data") / "naip_sample.png").pixels[200:456, 300:556]
    jobs = {"vr": (measure_vr, sample), "gray": (measure_gray, sample), "enh": (measure_jpeg2000_enhancer, crop),
            "cenh": (measure_cosmic_enhancer, crop), "codebook": (measure_codebook, sample),
            "dc": (measure_compensation, sample)}
    for part in parts or list(jobs):
        fn, arg = jobs[part]
        fn(arg)


if __name__ == "__main__":
    main(sys.argv[1:])
