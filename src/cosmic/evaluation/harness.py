"""``cosmic eval``: rate-distortion of several codecs on a folder of images (paper §5, Fig. 3).

Every point is a real encoding: bpp = encoded bytes x 8 / pixels (a whole ``.cosmic`` file for
COSMIC, a raw codestream for the classical codecs), PSNR and MS-SSIM on the decoded RGB.

Codecs:
- classical (:mod:`cosmic.evaluation.classical`), swept over fixed knob settings;
- ``cosmic``: the shipped default (the variable-rate model at its integer qualities), decoded
  without compensation; ``cosmic-dc``: the shipped models that have a stage-2 network, decoded
  with diffusion compensation (``steps`` DDIM steps);
- a model directory or shipped name, as ``model:NAME_OR_DIR`` (no compensation; several rate
  points of one codec as ``model:A+B+C``) or ``model-dc:NAME_OR_DIR`` (with it);
- CompressAI's learned baselines trained here: ``bmshj2018-hyperprior:DIR+DIR...``;
- any of these with Code-RSIC's decoder-side codebook prior after the decode, as
  ``CODEC+codebook`` (the prior's default fidelity) or ``CODEC+codebook@W`` (e.g. ``cosmic+codebook``,
  ``jpeg2000+codebook@0.5``; :mod:`cosmic.codebook`), and ``CODEC+codebook=PRIOR_DIR[@W]`` for a
  prior trained by ``cosmic train codebook`` rather than the shipped one.

Outputs (``write_results``): ``per_image.json``, one CompressAI-style ``<codec>.json`` per codec
(``results.bpp`` / ``psnr-rgb`` / ``ms-ssim-rgb``, averaged per rate point), ``summary.md``
(table + BD-rate against the anchor, JPEG2000) and RD plots.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cosmic.utils.progress import progress_bar as tqdm

from cosmic.evaluation.enhanced import ENHANCED_CODECS, EnhanceRunner, enhanced_specs
from cosmic.errors import InputError
from cosmic.evaluation.bjontegaard import bd_rate, quality_at_rate
from cosmic.evaluation.classical import CLASSICAL, DEFAULT_KNOBS, encode
from cosmic.evaluation.metrics import ms_ssim, psnr
from cosmic.io.images import load_rgb

__all__ = ["CodecSpec", "parse_codecs", "evaluate", "summarize", "seed_spread", "write_results",
           "eval_files", "run_evaluation", "report_only_results",
           "stitched_scores", "write_stitched", "ANCHOR", "CosmicRunner", "cosmic_models", "dc_variants"]

ANCHOR = "jpeg2000"


@dataclass
class CodecSpec:
    name: str
    kind: str  # "classical" or "cosmic"
    points: list = field(default_factory=list)  # knobs, or model names / directories
    steps: int = 0  # DDIM steps for cosmic (0: no compensation)
    seed: int | None = None  # diffusion seed of this codec (None: the evaluation's seed)
    note: str | None = None  # why a requested codec is unavailable
    prior: str | None = None  # a decoder-side prior applied after the decode (shipped name or directory)
    fidelity: float | None = None  # its fidelity weight (None: the prior's default)


PRIOR_SUFFIX = "+codebook"


def _with_prior(token: str, parse) -> list[CodecSpec] | None:
    """``CODEC+codebook[=PRIOR_DIR][@W]``: CODEC's specs with a Code-RSIC codebook prior (the
    shipped one, or the prior directory after ``=``) at fidelity W (by default the prior's own) after the decode,
    named after the whole token; None for a token without the suffix."""
    base, sep, rest = token.partition(PRIOR_SUFFIX)
    where, at, weight = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not sep or (where and not where.startswith("=")):
        return None
    from cosmic.codebook.prior import DEFAULT_PRIOR, check_fidelity

    try:
        fidelity = check_fidelity(float(weight)) if at else None
    except ValueError:
        raise InputError(f"--codecs {token}: the fidelity after '@' must be a number in [0, 1]") from None
    prior = Path(where[1:]) if where else None
    label = f"={prior.parent.name if prior.name == 'prior' else prior.name}" if prior else ""  # runs/X/prior: X
    specs = parse(base)
    for spec in specs:
        spec.name = f"{spec.name}{PRIOR_SUFFIX}{label}{at}{weight}"
        spec.prior, spec.fidelity = str(prior) if prior else DEFAULT_PRIOR, fidelity
    return specs


def cosmic_models() -> list[str]:
    """The shipped default's rate points (a variable-rate model: its integer qualities)."""
    from cosmic.zoo import DEFAULT_MODEL

    return expand_rate_points([DEFAULT_MODEL])


def _compensated_models() -> list[str]:
    from cosmic.zoo import load_compensator, shipped_models

    return [m for m in shipped_models() if m.startswith("cosmic") and load_compensator(m) is not None]


#: CompressAI baselines that ``cosmic train stage1 --arch`` trains; in ``--codecs`` as
#: ``ARCH:DIR1+DIR2+...`` (one rate point per trained model directory)
LEARNED_BASELINES = ("bmshj2018-hyperprior", "mbt2018-mean")


def split_point(ref: str) -> tuple[str, float | None]:
    """A rate point ``MODEL`` or ``MODEL@QUALITY`` (a variable-rate model at one quality)."""
    model, sep, quality = ref.rpartition("@")
    if not sep:
        return ref, None
    try:
        return model, float(quality)
    except ValueError:
        raise InputError(f"--codecs: '{ref}': the quality after '@' must be a number") from None


def expand_rate_points(refs: list[str]) -> list[str]:
    """A variable-rate model given without a quality stands for its integer qualities 1..K
    (``DIR@1``, ..., ``DIR@K``); fixed-rate models and explicit ``@Q`` points stay as they are."""
    from cosmic.errors import ModelError
    from cosmic.zoo import read_model_config

    points = []
    for ref in refs:
        model, quality = split_point(ref)
        try:
            levels = 0 if quality is not None else read_model_config(model).get("rate_levels", 0)
        except (ModelError, OSError, ValueError):
            levels = 0  # not loadable: loading it later says why, as for any model
        points += [f"{model}@{q}" for q in range(1, levels + 1)] if levels else [ref]
    return points


def point_label(ref: str) -> str:
    """A model's short label: its directory name (the run's name for a ``RUN/final`` directory),
    with ``@Q`` for a variable-rate model's point."""
    model, quality = split_point(ref)
    p = Path(model)
    label = p.parent.name if p.name in ("final", "last") and p.parent.name else p.name
    return label if quality is None else f"{label}@{quality:g}"


def _series_label(refs: list[str]) -> str:
    """One model: its label; several (rate points, ``model:A+B``): their labels' common stem."""
    labels = [point_label(r) for r in refs]
    if len(labels) == 1:
        return labels[0]
    import os

    return os.path.commonprefix(labels).rstrip("-_q") or "model"


def _model_series(token: str) -> tuple[str, list[str], list[str]]:
    """``model:A+B`` / ``model-dc:A@Q+...`` (directories or shipped names): the series label, its
    rate points (a variable-rate model without ``@Q`` expanded) and its distinct models."""
    kind, _, rest = token.partition(":")
    refs = [r for r in rest.split("+") if r]
    if not refs:
        raise InputError(f"--codecs {token}: give a model directory or shipped name after '{kind}:'")
    models = list(dict.fromkeys(split_point(r)[0] for r in refs))
    return _series_label([split_point(r)[0] for r in refs]), expand_rate_points(refs), models


def _shipped_baselines(arch: str) -> list[str]:
    from cosmic.zoo import shipped_models

    return [n for n in shipped_models() if n.startswith(arch)]


def dc_variants(name: str, step_list: list[int], seeds: list[int] | None, explicit_steps: bool):
    """(name, steps, seed) of each diffusion-compensated codec: one per step count (the paper's
    Fig. 8 sweep) and per seed (Table 4: ``NAME-sK``)."""
    for n in step_list:
        base = f"{name}{n}" if explicit_steps or len(step_list) > 1 else name
        if not seeds or len(seeds) == 1:
            yield base, n, (seeds[0] if seeds else None)
        else:
            for s in seeds:
                yield f"{base}-s{s}", n, s


def parse_codecs(text: str, steps: int | list[int] = 25, seeds: list[int] | None = None) -> list[CodecSpec]:
    """``"cosmic,jpeg2000,jpeg"`` -> specs; unknown names are an :class:`InputError`. Several
    ``steps`` give one ``cosmic-dcN`` codec per step count (the paper's Fig. 8 sweep); several
    ``seeds`` one ``...-sK`` codec per seed (the paper's Table 4, see :func:`seed_spread`)."""
    step_list = [steps] if isinstance(steps, int) else list(steps)
    from cosmic.zoo import load_compensator

    specs = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        with_prior = _with_prior(token, lambda base: parse_codecs(base, steps, seeds))
        if with_prior is not None:
            specs += with_prior
        elif token in CLASSICAL:
            specs.append(CodecSpec(token, "classical", list(DEFAULT_KNOBS[token])))
        elif token == "cosmic":
            specs.append(CodecSpec("cosmic", "cosmic", cosmic_models()))
        elif token == "cosmic-dc":
            models = _compensated_models()
            note = None if models else "no shipped model has a stage-2 (diffusion) network"
            for name, n, s in dc_variants("cosmic-dc", step_list, seeds, False):
                specs.append(CodecSpec(name, "cosmic", models, steps=n, seed=s, note=note))
        elif token.startswith("model:"):
            label, points, _ = _model_series(token)
            specs.append(CodecSpec(label, "cosmic", points))
        elif token.startswith("model-dc:"):
            label, points, models = _model_series(token)
            if any(load_compensator(m) is None for m in models):  # each model loaded once
                raise InputError(f"--codecs {token}: that model has no stage-2 (diffusion) network")
            for name, n, s in dc_variants(f"{label}-dc", step_list, seeds, True):
                specs.append(CodecSpec(name, "cosmic", points, steps=n, seed=s))
        elif token.split(":", 1)[0] in LEARNED_BASELINES:
            arch, _, refs = token.partition(":")
            points = [r for r in refs.split("+") if r] if refs else _shipped_baselines(arch)
            note = None if points else (
                "no trained model given: CompressAI's pretrained weights cannot be downloaded here; "
                f"train one with `cosmic train stage1 --arch {arch}` and pass {arch}:DIR1+DIR2+...")
            specs.append(CodecSpec(arch, "cosmic", points, note=note))
        elif token in ENHANCED_CODECS:  # LDM-RSIC: a source codec's decodes enhanced on the ground
            specs += enhanced_specs(token, step_list, seeds)
        elif token == "elic":
            specs.append(CodecSpec(token, "learned", [], note=(
                "ELIC is not trainable here yet (`cosmic train stage1 --arch` has "
                f"{', '.join(LEARNED_BASELINES)})")))
        else:
            known = ", ".join([*CLASSICAL, "cosmic", "cosmic-dc", *ENHANCED_CODECS, "model:DIR", "model-dc:DIR",
                               *(f"{a}:DIR+DIR..." for a in LEARNED_BASELINES)])
            raise InputError(f"--codecs: unknown codec '{token}' (known: {known})")
    if not specs:
        raise InputError("--codecs: no codec given")
    return specs


class CosmicRunner:
    """Encodes and decodes real ``.cosmic`` files (in memory) through the pipelines, per
    rate-point model (loaded once)."""

    def __init__(self, spec: CodecSpec, seed: int = 0, encoded: dict | None = None):
        from cosmic.pipelines import DecodePipeline, EncodePipeline
        from cosmic.zoo import load_model

        points = {ref: split_point(ref) for ref in spec.points}  # ref -> (model, quality)
        loaded = {path: load_model(path) for path, _ in points.values()}  # each model once
        self.qualities = {ref: quality for ref, (_, quality) in points.items()}
        self.encoders = {ref: EncodePipeline(loaded[p].onboard, loaded[p].name) for ref, (p, _) in points.items()}
        self.decoders = {ref: DecodePipeline(loaded[p], p) for ref, (p, _) in points.items()}
        self.steps, self.seed = spec.steps, (seed if spec.seed is None else spec.seed)
        self.prior = {"prior": load_prior_once(spec.prior), "fidelity": spec.fidelity} if spec.prior else {}
        # (model, image) -> (file bytes, encode seconds): shared by the runners of one evaluation,
        # so decoding one file several ways (steps 0, 5, 10, ...) encodes it once
        self.encoded = {} if encoded is None else encoded

    def _encode(self, ref: str, pixels: np.ndarray, metadata, key: str | None) -> tuple[bytes, float]:
        from cosmic.pipelines import open_scene

        cached = self.encoded.get((ref, key)) if key is not None else None
        if cached is not None:
            return cached
        encoder = self.encoders[ref]
        quality = self.qualities[ref]
        coded = encoder.encode(open_scene(pixels, metadata=metadata),
                               quality=encoder.default_quality if quality is None else quality)
        data = (coded.to_bytes(), coded.seconds)
        if key is not None:
            for stale in [k for k in self.encoded if k[1] != key]:  # keep this image's only
                del self.encoded[stale]
            self.encoded[(ref, key)] = data
        return data

    def run(self, ref: str, pixels: np.ndarray, metadata, key: str | None = None
            ) -> tuple[float, np.ndarray, float, float]:
        """(bpp, decoded pixels, encode seconds, decode seconds) of ``pixels`` coded by ``ref``."""
        data, t_enc = self._encode(ref, pixels, metadata, key)
        t0 = time.perf_counter()
        decoded = self.decoders[ref](data, steps=self.steps, seed=self.seed, **self.prior).pixels
        t_dec = time.perf_counter() - t0
        h, w = pixels.shape[:2]
        return len(data) * 8.0 / (h * w), decoded, t_enc, t_dec


def evaluate(files: list[Path], specs: list[CodecSpec], progress: bool = True, seed: int = 0,
             default_metadata=None, on_decoded=None, classifier=None,
             features: dict | None = None) -> list[dict]:
    """One row per (image, codec, rate point); ``on_decoded(path, codec, point, pixels)`` sees
    every decoded image (the tile-set evaluation stitches them). With a ``classifier``
    (:mod:`cosmic.evaluation.classifier`) each row records whether the decoded image is still
    classified correctly, and ``features[(codec, point)]`` (``("original", "")`` for the
    originals) collects its features for the Fréchet distance."""
    from cosmic.evaluation.perceptual import lpips_metric

    lpips_fn = lpips_metric()  # None unless the package and its AlexNet weights are cached
    rows: list[dict] = []
    encoded: dict = {}
    runners = {s.name: CosmicRunner(s, seed, encoded) for s in specs if s.kind == "cosmic" and s.points}
    runners.update({s.name: EnhanceRunner(s, seed, encoded) for s in specs if s.kind == "enhanced" and s.points})
    for path in tqdm(files, desc="images", disable=not progress):
        x = load_rgb(path).pixels
        truth = _classify_original(classifier, path, x, features)
        meta = _metadata_for(path, default_metadata)
        for spec in specs:
            for point in spec.points:
                label, bpp, y, t_enc, t_dec = _code_point(spec, point, runners, path, x, meta)
                row = {"image": str(path), "codec": spec.name, "point": label, "bpp": bpp,
                       "psnr": psnr(x, y), "ms_ssim": _ms_ssim(x, y), "encode_s": t_enc, "decode_s": t_dec}
                if lpips_fn is not None:
                    row["lpips"] = lpips_fn(x, y)
                _classify_decoded(classifier, truth, y, row, features, (spec.name, label))
                rows.append(row)
                if on_decoded is not None:
                    on_decoded(path, spec.name, label, y)
    return rows


@functools.lru_cache(maxsize=4)
def load_prior_once(ref: str):
    """The decoder-side prior ``ref``, loaded once per process."""
    from cosmic.codebook.prior import load_prior

    return load_prior(ref)


def _metadata_for(path: Path, default_metadata):
    """The image's sidecar metadata, else ``default_metadata``, else none."""
    from cosmic.metadata import SensorMetadata, load_sidecar, sidecar_for

    side = sidecar_for(path)
    return load_sidecar(side) if side else (default_metadata or SensorMetadata())


def _code_point(spec: CodecSpec, point, runners: dict, path: Path, x: np.ndarray, meta):
    """(label, bpp, decoded, encode s, decode s) of one codec at one rate point."""
    if spec.kind == "classical":
        t0 = time.perf_counter()
        enc = encode(spec.name.split(PRIOR_SUFFIX)[0], x, point)
        t_enc, t0 = time.perf_counter() - t0, time.perf_counter()
        if spec.prior:  # the prior's time is the only decode time measured here
            return (f"{point:g}", enc.bpp, load_prior_once(spec.prior).enhance(enc.decoded, spec.fidelity),
                    t_enc, time.perf_counter() - t0)
        return f"{point:g}", enc.bpp, enc.decoded, t_enc, math.nan
    if spec.kind == "enhanced":
        return runners[spec.name].run(point, x, meta, key=str(path))
    bpp, y, t_enc, t_dec = runners[spec.name].run(point, x, meta, key=str(path))
    return point_label(point), bpp, y, t_enc, t_dec


def _classify_original(classifier, path: Path, x: np.ndarray, features: dict | None):
    """The image's class if the classifier knows it (else None); records the original's features."""
    if classifier is None:
        return None
    from cosmic.evaluation.classifier import class_of

    truth = class_of(path) if class_of(path) in classifier.classes else None
    pred, feat = classifier.predict_and_features([x])
    if features is not None:
        features.setdefault(("original", ""), []).append(feat[0])
        if truth is not None:
            features.setdefault(("original-top1", ""), []).append(classifier.classes[pred[0]] == truth)
    return truth


def _classify_decoded(classifier, truth, y: np.ndarray, row: dict, features: dict | None, key) -> None:
    """Top-1 of a decoded image into ``row``; its features into ``features[key]``."""
    if classifier is None:
        return
    pred, feat = classifier.predict_and_features([y])
    if features is not None:
        features.setdefault(key, []).append(feat[0])
    if truth is not None:
        row["top1"] = bool(classifier.classes[pred[0]] == truth)


def _finite_mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM, or NaN for images too small for its five scales (< 161 px a side)."""
    return ms_ssim(a, b) if min(a.shape[:2]) > 160 else math.nan


def summarize(rows: list[dict]) -> dict[str, list[dict]]:
    """Per codec, per rate point: means over images (CompressAI's averaging), sorted by bpp."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["codec"], r["point"]), []).append(r)
    out: dict[str, list[dict]] = {}
    for (codec, point), rs in groups.items():
        finite = [r["psnr"] for r in rs if math.isfinite(r["psnr"])]
        out.setdefault(codec, []).append({
            "point": point, "images": len(rs),
            "bpp": float(np.mean([r["bpp"] for r in rs])),
            "psnr": float(np.mean(finite)) if finite else math.inf,
            "ms_ssim": _finite_mean([r["ms_ssim"] for r in rs]),
            "top1": float(np.mean([r["top1"] for r in rs])) if all("top1" in r for r in rs) else math.nan,
            "encode_s": float(np.nanmean([r["encode_s"] for r in rs])),
            "decode_s": float(np.nanmean([r["decode_s"] for r in rs])) if any(
                math.isfinite(r["decode_s"]) for r in rs) else math.nan,
        })
    for codec in out:
        out[codec].sort(key=lambda p: p["bpp"])
    return out


def seed_spread(summary: dict) -> list[dict]:
    """Table 4 of the paper: for codecs evaluated with several seeds (``NAME-sK``), per rate
    point the mean and 2σ (sample standard deviation) over seeds of the per-seed mean PSNR and
    MS-SSIM."""
    import re

    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for codec, points in summary.items():
        m = re.fullmatch(r"(.+)-s(\d+)", codec)
        if m:
            for p in points:
                groups.setdefault((m.group(1), p["point"]), {})[int(m.group(2))] = p
    out = []
    for (codec, point), by_seed in groups.items():
        if len(by_seed) < 2:
            continue
        row = {"codec": codec, "point": point, "seeds": sorted(by_seed)}
        for metric in ("bpp", "psnr", "ms_ssim"):
            v = np.array([p[metric] for p in by_seed.values()], dtype=float)
            row[metric] = float(v.mean())
            row[f"{metric}_2sigma"] = float(2 * v.std(ddof=1))
        out.append(row)
    return out


def _bd(summary: dict, codec: str, metric: str, anchor: str = ANCHOR) -> float:
    if anchor not in summary or codec == anchor:
        return math.nan
    a, t = summary[anchor], summary[codec]
    return bd_rate([p["bpp"] for p in a], [p[metric] for p in a], [p["bpp"] for p in t], [p[metric] for p in t])


def _delta_vs_anchor(summary: dict, codec: str, point: dict) -> tuple[float, float]:
    """(PSNR, MS-SSIM) of ``point`` minus the anchor's at the same bpp (NaN: no anchor there)."""
    if ANCHOR not in summary or codec == ANCHOR:
        return math.nan, math.nan
    a = summary[ANCHOR]
    return tuple(point[m] - quality_at_rate([q["bpp"] for q in a], [q[m] for q in a], point["bpp"])
                 for m in ("psnr", "ms_ssim"))


def _fmt_delta(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}" if math.isfinite(value) else ""


def write_results(out: Path, rows: list[dict], specs: list[CodecSpec], title: str, command: str,
                  features: dict | None = None, classifier_name: str | None = None) -> dict:
    """Write per-image JSON, one CompressAI-style JSON per codec, summary.md and RD plots.
    With classifier ``features``, each rate point also gets FD-UCM (Fréchet distance of the
    classifier's features of decoded vs original images)."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    with_cls = bool(features) and ("original", "") in features
    if with_cls:
        _add_fd_ucm(summary, features)
    _write_json(out, rows, summary, title, command)
    n_images = len({r["image"] for r in rows})
    lines = [f"# Rate-distortion on {title}", "", f"{n_images} images. Command: `{command}`", "",
             "bpp from the encoded bytes; PSNR (dB) and MS-SSIM on RGB, averaged per rate point.", ""]
    lines += _bd_table(summary, specs)
    from cosmic.evaluation.perceptual import status

    perceptual = status()
    lines += ["", f"LPIPS: {perceptual['lpips']}. FID: {perceptual['fid']}.", ""]
    if with_cls:
        lines += _downstream_note(features, classifier_name)
    lines += _points_table(summary, with_cls)
    spread = seed_spread(summary)
    if spread:
        (out / "seeds.json").write_text(json.dumps(spread, indent=1) + "\n")
        lines += _seed_table(spread)
    lines += ["", "![PSNR](rd-psnr.png) ![MS-SSIM](rd-msssim.png)", ""]
    (out / "summary.md").write_text("\n".join(lines))
    _plot(summary, out, title)
    return summary


def _add_fd_ucm(summary: dict, features: dict) -> None:
    """FD-UCM of every rate point that has the classifier features of two or more images."""
    from cosmic.evaluation.classifier import frechet_distance

    ref = np.stack(features[("original", "")])
    for codec, points in summary.items():
        for p in points:
            feats = features.get((codec, p["point"]))
            p["fd_ucm"] = frechet_distance(ref, np.stack(feats)) if feats and len(feats) > 1 else math.nan


def _write_json(out: Path, rows: list[dict], summary: dict, title: str, command: str) -> None:
    """per_image.json (one compact row per line), run.json and one CompressAI-style JSON per codec."""
    (out / "per_image.json").write_text(
        "[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n]\n")
    (out / "run.json").write_text(json.dumps({"title": title, "command": command}, indent=1) + "\n")
    for codec, points in summary.items():
        (out / f"{codec}.json").write_text(json.dumps({
            "name": codec, "description": f"{codec} on {title}",
            "results": {"bpp": [p["bpp"] for p in points], "psnr-rgb": [p["psnr"] for p in points],
                        "ms-ssim-rgb": [p["ms_ssim"] for p in points], "point": [p["point"] for p in points]},
        }, indent=1) + "\n")


def _bd_table(summary: dict, specs: list[CodecSpec]) -> list[str]:
    lines = [f"BD-rate against {ANCHOR} (negative: fewer bits for the same quality; n/a: the curves do "
             "not overlap in quality):", "",
             "| codec | BD-rate (PSNR) | BD-rate (MS-SSIM) | points | bpp range |", "|---|---|---|---|---|"]
    for codec, points in summary.items():
        bdp, bdm = _bd(summary, codec, "psnr"), _bd(summary, codec, "ms_ssim")
        fmt = lambda v: "anchor" if codec == ANCHOR else ("n/a" if not math.isfinite(v) else f"{v:+.1f}%")  # noqa: E731
        lines.append(f"| {codec} | {fmt(bdp)} | {fmt(bdm)} | {len(points)} | "
                     f"{points[0]['bpp']:.3f}-{points[-1]['bpp']:.3f} |")
    for s in specs:
        if s.note:
            lines.append(f"| {s.name} | unavailable | unavailable | 0 | {s.note} |")
    return lines


def _downstream_note(features: dict, classifier_name: str | None) -> list[str]:
    top = features.get(("original-top1", ""), [])
    acc = f"{np.mean(top):.3f}" if top else "n/a (images have no known class)"
    return [f"Downstream: top-1 accuracy of the scene classifier `{classifier_name}` (trained here on UC "
            f"Merced train; on the originals: {acc}) and FD-UCM, the Fréchet distance between its "
            "features of decoded and original images (FID's formula on our classifier: *not* FID, "
            "comparable only within this table).", ""]


def _points_table(summary: dict, with_cls: bool) -> list[str]:
    extra_h = " top-1 | FD-UCM |" if with_cls else ""
    lines = [f"Δ: the point's PSNR / MS-SSIM minus {ANCHOR}'s at the same bpp (its curve interpolated "
             "over log bpp; blank outside its range): one rate point compared without a curve.", "",
             "| codec | point | bpp | PSNR | MS-SSIM | Δ PSNR | Δ MS-SSIM |" + extra_h + " encode s | decode s |",
             "|---|---|---|---|---|---|---|" + ("---|---|" if with_cls else "") + "---|---|"]
    for codec, points in summary.items():
        for p in points:
            dec = f"{p['decode_s']:.3f}" if math.isfinite(p["decode_s"]) else "(in encode)"
            extra = f" {p['top1']:.3f} | {p.get('fd_ucm', math.nan):.2f} |" if with_cls else ""
            delta = " | ".join(_fmt_delta(v, d) for v, d in zip(_delta_vs_anchor(summary, codec, p), (2, 4)))
            lines.append(f"| {codec} | {p['point']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} | "
                         f"{delta} |{extra} {p['encode_s']:.3f} | {dec} |")
    return lines


def _seed_table(spread: list[dict]) -> list[str]:
    lines = ["", "Seed variance (paper Table 4): the same files decoded with each seed; mean ± 2σ over "
             "seeds of the per-seed means.", "",
             "| codec | point | seeds | bpp | PSNR | MS-SSIM |", "|---|---|---|---|---|---|"]
    for r in spread:
        lines.append(f"| {r['codec']} | {r['point']} | {len(r['seeds'])} | {r['bpp']:.4f} | "
                     f"{r['psnr']:.2f} ± {r['psnr_2sigma']:.2f} | {r['ms_ssim']:.4f} ± {r['ms_ssim_2sigma']:.4f} |")
    return lines


def eval_files(data: Path, split: str, limit: int = 0) -> list[Path]:
    """Images of a folder (SPLITS.json honoured), or the non-fill tiles of a tile set; with
    ``limit``, that many spread evenly over the set."""
    from cosmic.evaluation.tileset import MANIFEST_NAME, load_manifest
    from cosmic.io.images import split_files

    if (data / MANIFEST_NAME).is_file():
        files = [data / t["file"] for t in load_manifest(data)["tiles"] if not t["fill"]]
    else:
        files = split_files(data, split)
    if limit and len(files) > limit:
        files = [files[int(i * len(files) / limit)] for i in range(limit)]
    return files


def run_evaluation(data: Path, specs: list[CodecSpec], out: Path, split: str = "val", limit: int = 0,
                   seed: int = 0, title: str | None = None, command: str = "", default_metadata=None,
                   classifier=None, classifier_name: str | None = None, stitch: bool = True) -> list[Path]:
    """`cosmic eval`: evaluate ``specs`` on a folder or tile set and write the results (for a
    tile set also the stitched scenes, unless ``stitch`` is off); returns the markdown reports written."""
    from cosmic.evaluation.tileset import MANIFEST_NAME, load_manifest

    tile_set = stitch and (data / MANIFEST_NAME).is_file()
    decoded: dict = {}
    keep = (lambda path, codec, point, y: decoded.__setitem__((str(path), codec, point), y)) if tile_set else None
    features: dict = {}
    rows = evaluate(eval_files(data, split, limit), specs, seed=seed, default_metadata=default_metadata,
                    on_decoded=keep, classifier=classifier, features=features)
    title = title or f"{data.name}" + (f"/{split}" if (data / "SPLITS.json").is_file() else "")
    write_results(out, rows, specs, title, command, features=features if classifier else None,
                  classifier_name=classifier_name)
    if not tile_set:
        return [out / "summary.md"]
    write_stitched(out, stitched_scores(load_manifest(data), data, decoded))
    return [out / "summary.md", out / "stitched.md"]


def report_only_results(out: Path, specs: list[CodecSpec], title: str, command: str) -> list[Path]:
    """Rewrite the reports of an earlier run from ``OUT/per_image.json`` (no coding)."""
    rows_file = out / "per_image.json"
    if not rows_file.is_file():
        raise InputError(f"{rows_file}: no results to report; run without --report-only first")
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    write_results(out, json.loads(rows_file.read_text()), specs, run.get("title", title),
                  run.get("command", command))
    return [out / "summary.md"]


def stitched_scores(manifest: dict, root: Path, decoded: dict) -> list[dict]:
    """Per scene and (codec, point): the decoded tiles stitched back (all-fill tiles, which are
    not coded, are taken from the original) and scored against the original crop - PSNR,
    MS-SSIM and the seam score of :mod:`cosmic.evaluation.seams`."""
    from cosmic.evaluation.seams import seam_score
    from cosmic.evaluation.tileset import stitch

    t = manifest["tile"]
    out = []
    keys = list(dict.fromkeys((c, p) for (_, c, p) in decoded))  # codec and knob order
    for scene in manifest["scenes"]:
        tiles = [x for x in manifest["tiles"] if x["scene"] == scene["name"]]
        if not tiles:
            continue
        original = {(x["row"], x["col"]): load_rgb(root / x["file"]).pixels for x in tiles}
        ref = stitch(manifest, scene["name"], original)
        for codec, point in keys:
            parts = {}
            for x in tiles:
                y = decoded.get((str(root / x["file"]), codec, point))
                parts[(x["row"], x["col"])] = y if y is not None else original[(x["row"], x["col"])]
            img = stitch(manifest, scene["name"], parts)
            out.append({"scene": scene["name"], "codec": codec, "point": point,
                        "psnr": psnr(ref, img), "ms_ssim": _ms_ssim(ref, img), "seam": seam_score(img, ref, t)})
    return out


def write_stitched(out: Path, scores: list[dict]) -> None:
    (out / "stitched.json").write_text(json.dumps(scores, indent=1) + "\n")
    lines = ["# Stitched scenes", "", "Each scene's tiles, coded independently, stitched back and scored "
             "against the original crop. Seam score: tile-border blockiness minus the original's (0: no "
             "visible seams).", "", "| scene | codec | point | PSNR | MS-SSIM | seam |", "|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s['scene']} | {s['codec']} | {s['point']} | {s['psnr']:.2f} | {s['ms_ssim']:.4f} | "
                     f"{s['seam']:+.3f} |")
    (out / "stitched.md").write_text("\n".join(lines) + "\n")


def _plot(summary: dict, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for metric, label, name in (("psnr", "PSNR (dB)", "rd-psnr.png"), ("ms_ssim", "MS-SSIM", "rd-msssim.png")):
        fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
        for codec, points in summary.items():
            style = "o-" if codec.startswith("cosmic") else ".--"
            ax.plot([p["bpp"] for p in points], [p[metric] for p in points], style, label=codec)
        ax.set_xlabel("bpp (from file bytes)")
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
