"""The codec names of ``cosmic eval --codecs``, parsed into :class:`CodecSpec` s.

Codecs:
- classical (:mod:`cosmic.evaluation.classical`), swept over fixed knob settings;
- ``cosmic``: the shipped default (the variable-rate model at its integer qualities), decoded
  without compensation; ``cosmic-dc``: the shipped models that have a stage-2 network, decoded
  with diffusion compensation (``steps`` DDIM steps);
- a model directory or shipped name, as ``model:NAME_OR_DIR`` (no compensation; several rate
  points of one codec as ``model:A+B+C``) or ``model-dc:NAME_OR_DIR`` (with it);
- CompressAI's learned baselines trained here: ``bmshj2018-hyperprior:DIR+DIR...``;
- LDM-RSIC's enhanced codecs (:data:`ENHANCED_CODECS`): a source codec's decodes enhanced on the
  ground, at the source's real bpp (the enhancement costs no bits): ``jpeg2000+enhance`` (the
  deterministic prior, steps 0), ``jpeg2000+enhance-ldm`` (the prior sampled by the LDM, one codec
  per step count and seed, named like ``cosmic-dc``'s), and ``cosmic+enhance[-ldm]`` (the shipped
  default's real files at the ``cosmic`` codec's rate points, enhanced by the shipped enhancer whose
  source is that model; unavailable, with a note, when none is shipped);
- any of these with Code-RSIC's decoder-side codebook prior after the decode, as
  ``CODEC+codebook`` (the prior's default fidelity) or ``CODEC+codebook@W`` (e.g. ``cosmic+codebook``,
  ``jpeg2000+codebook@0.5``; :mod:`cosmic.codebook`), and ``CODEC+codebook=PRIOR_DIR[@W]`` for a
  prior trained by ``cosmic train codebook`` rather than the shipped one.

Parsing reads model configs (a variable-rate model's qualities, whether a model has a stage-2
network, which enhancers are shipped) but loads no weights: :mod:`cosmic.evaluation.runners` loads
a spec's models when it is run. A bad name is an :class:`~cosmic.errors.InputError` of one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from cosmic.errors import InputError
from cosmic.evaluation.classical import CLASSICAL, DEFAULT_KNOBS

__all__ = ["CodecSpec", "parse_codecs", "split_point", "expand_rate_points", "point_label", "dc_variants",
           "cosmic_models", "source_of", "enhanced_specs", "ENHANCED_CODECS", "LEARNED_BASELINES",
           "PRIOR_SUFFIX"]

#: how a spec is run: a classical codec, real ``.cosmic`` files of a learned model (COSMIC or a
#: CompressAI baseline), or a source codec's decodes enhanced by LDM-RSIC
Kind = Literal["classical", "cosmic", "enhanced"]

#: the suffix of a codec with Code-RSIC's codebook prior after its decode
PRIOR_SUFFIX = "+codebook"

#: CompressAI baselines that ``cosmic train stage1 --arch`` trains; in ``--codecs`` as
#: ``ARCH:DIR1+DIR2+...`` (one rate point per trained model directory)
LEARNED_BASELINES = ("bmshj2018-hyperprior", "mbt2018-mean")

#: LDM-RSIC's codecs: a source codec's decodes enhanced on the ground
ENHANCED_CODECS = ("jpeg2000+enhance", "jpeg2000+enhance-ldm", "cosmic+enhance", "cosmic+enhance-ldm")


@dataclass
class CodecSpec:
    """One codec of an evaluation: its name in the reports, how it is run, and its rate points
    (knobs of a classical codec; model names or directories, ``MODEL@Q`` for a variable-rate
    model's quality, of a learned one). A spec with a ``note`` is unavailable and has no points."""

    name: str
    kind: Kind
    points: list = field(default_factory=list)  # knobs, or model names / directories
    steps: int = 0  # DDIM steps for cosmic (0: no compensation)
    seed: int | None = None  # diffusion seed of this codec (None: the evaluation's seed)
    note: str | None = None  # why a requested codec is unavailable
    prior: str | None = None  # a decoder-side prior applied after the decode (shipped name or directory)
    fidelity: float | None = None  # its fidelity weight (None: the prior's default)

    @property
    def base_codec(self) -> str:
        """The codec's name without the codebook prior's suffix (a classical spec: the codec it runs)."""
        return self.name.split(PRIOR_SUFFIX)[0]


def parse_codecs(text: str, steps: int | list[int] = 25, seeds: list[int] | None = None) -> list[CodecSpec]:
    """``"cosmic,jpeg2000,jpeg"`` -> specs; unknown names are an :class:`InputError`. Several
    ``steps`` give one ``cosmic-dcN`` codec per step count (the paper's Fig. 8 sweep); several
    ``seeds`` one ``...-sK`` codec per seed (the paper's Table 4, see
    :func:`cosmic.evaluation.statistics.seed_spread`)."""
    step_list = [steps] if isinstance(steps, int) else list(steps)
    specs = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        with_prior = _with_prior(token, lambda base: parse_codecs(base, steps, seeds))
        specs += with_prior if with_prior is not None else _parse_token(token, step_list, seeds)
    if not specs:
        raise InputError("--codecs: no codec given")
    return specs


def _parse_token(token: str, step_list: list[int], seeds: list[int] | None) -> list[CodecSpec]:
    """The specs of one codec name (without the codebook prior's suffix)."""
    if token in CLASSICAL:
        return [CodecSpec(token, "classical", list(DEFAULT_KNOBS[token]))]
    if token == "cosmic":
        return [CodecSpec("cosmic", "cosmic", cosmic_models())]
    if token == "cosmic-dc":
        models = _compensated_models()
        note = None if models else "no shipped model has a stage-2 (diffusion) network"
        return [CodecSpec(name, "cosmic", models, steps=n, seed=s, note=note)
                for name, n, s in dc_variants("cosmic-dc", step_list, seeds, False)]
    if token.startswith("model:"):
        label, points, _ = _model_series(token)
        return [CodecSpec(label, "cosmic", points)]
    if token.startswith("model-dc:"):
        return _compensated_series(token, step_list, seeds)
    if token.split(":", 1)[0] in LEARNED_BASELINES:
        return [_baseline(token)]
    if token in ENHANCED_CODECS:
        return enhanced_specs(token, step_list, seeds)
    known = ", ".join([*CLASSICAL, "cosmic", "cosmic-dc", *ENHANCED_CODECS, "model:DIR", "model-dc:DIR",
                       *(f"{a}:DIR+DIR..." for a in LEARNED_BASELINES)])
    raise InputError(f"--codecs: unknown codec '{token}' (known: {known})")


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
    """The shipped COSMIC models that have a stage-2 (diffusion) network."""
    from cosmic.zoo import has_compensator, shipped_models

    return [m for m in shipped_models() if m.startswith("cosmic") and has_compensator(m)]


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


def _compensated_series(token: str, step_list: list[int], seeds: list[int] | None) -> list[CodecSpec]:
    """``model-dc:A+B...``: one spec per step count and seed; a model without a stage-2 network
    is an :class:`InputError`."""
    from cosmic.zoo import has_compensator

    label, points, models = _model_series(token)
    if not all(has_compensator(m) for m in models):
        raise InputError(f"--codecs {token}: that model has no stage-2 (diffusion) network")
    return [CodecSpec(name, "cosmic", points, steps=n, seed=s)
            for name, n, s in dc_variants(f"{label}-dc", step_list, seeds, True)]


def _baseline(token: str) -> CodecSpec:
    """``ARCH:DIR+DIR...`` of a CompressAI baseline (``ARCH`` alone: the shipped ones, if any)."""
    from cosmic.zoo import shipped_models

    arch, _, refs = token.partition(":")
    points = [r for r in refs.split("+") if r] if refs else [n for n in shipped_models() if n.startswith(arch)]
    note = None if points else (
        "no trained model given: CompressAI's pretrained weights cannot be downloaded here; "
        f"train one with `cosmic train stage1 --arch {arch}` and pass {arch}:DIR1+DIR2+...")
    return CodecSpec(arch, "cosmic", points, note=note)


def dc_variants(name: str, step_list: list[int], seeds: list[int] | None,
                explicit_steps: bool) -> Iterator[tuple[str, int, int | None]]:
    """(name, steps, seed) of each diffusion-compensated codec: one per step count (the paper's
    Fig. 8 sweep) and per seed (Table 4: ``NAME-sK``)."""
    for n in step_list:
        base = f"{name}{n}" if explicit_steps or len(step_list) > 1 else name
        if not seeds or len(seeds) == 1:
            yield base, n, (seeds[0] if seeds else None)
        else:
            for s in seeds:
                yield f"{base}-s{s}", n, s


def source_of(token: str) -> str:
    """The enhancer source of an enhanced codec's name: ``jpeg2000`` or the default model's name."""
    from cosmic.zoo import DEFAULT_MODEL

    source = token.split("+")[0]
    return DEFAULT_MODEL if source == "cosmic" else source


def enhanced_specs(token: str, step_list: list[int], seeds: list[int] | None) -> list[CodecSpec]:
    """The specs of an enhanced codec name (:data:`ENHANCED_CODECS`): JPEG2000 at its default
    knobs or the ``cosmic`` codec's rate points; unavailable, with a note, without a shipped
    enhancer for that source."""
    from cosmic.zoo import shipped_postprocessor

    source = source_of(token)
    missing = shipped_postprocessor(source, "Enhancer") is None
    note = f"no enhancer is trained for {source} decodes yet" if missing else None
    knobs = list(DEFAULT_KNOBS["jpeg2000"]) if source == "jpeg2000" else cosmic_models()
    knobs = [] if missing else knobs
    if not token.endswith("-ldm"):
        return [CodecSpec(token, "enhanced", knobs, steps=0, note=note)]
    return [CodecSpec(name, "enhanced", knobs, steps=n, seed=s, note=note)
            for name, n, s in dc_variants(token, step_list, seeds, True)]
