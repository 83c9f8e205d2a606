"""The options several ``cosmic`` commands share (typer parameter declarations, one place)."""

from __future__ import annotations

import typer

THREADS = typer.Option(0, help="torch threads (0: default)")
#: the options of many inputs (a folder or glob -> an output folder; cosmic.pipelines.batch)
MANY = dict(
    jobs=typer.Option(1, help="many inputs: worker processes, each loading the models once"),
    scheduler=typer.Option(
        None, help="many inputs: a Dask scheduler address (tcp://host:8786), or 'local' for a local Dask "
                   "cluster of --jobs processes (pip install 'cosmic\\[cluster]')"),
)
QUIET = typer.Option(False, "--quiet", "-q")
QUALITY = typer.Option(None, help="quality of a variable-rate model, any value over its range (the shipped "
                                   "default: 1 (fewest bits) .. 6 (most), default 3); none for a fixed-rate one")
BPP = typer.Option(None, help="rate control: the highest quality whose whole file fits in this many bits "
                               "per pixel (lands within 3% under; variable-rate models)")
MAX_BYTES = typer.Option(None, help="rate control: the highest quality whose whole file fits in N bytes "
                                     "(header included)")
ENCODER = typer.Option(None, "--model", "-m",
                        help="shipped model name or model directory (default: the variable-rate cosmic-small-vr; "
                             "for a one-band source the single-band cosmic-small-vr-gray)")
META = typer.Option(None, help="fMoW-style sensor metadata JSON (default: IMAGE.json beside the image, if any)")
BANDS = typer.Option(None, help="TIFF bands to code, 1-based: three as R,G,B (e.g. 4,3,2), one as grey, "
                                 "others as band groups (default: all but alpha)")
GROUPS = typer.Option(None, help="TIFF band groups of 1 or 3 bands, e.g. 1,2,3:4 (decoded in band order)")
MASK = typer.Option(True, help="code the fill (nodata / alpha / internal mask; 0 in every band of a "
                                "non-8-bit file without nodata) as a lossless mask")
SCALE = typer.Option(None, help="for non-8-bit TIFFs: LOW,HIGH mapped to 0..255, or 'auto' (2-98% stretch per band)")
DERIVE = typer.Option(True, help="derive UTM zone, GSD, time and sun angles from a GeoTIFF for fields the "
                                  "sidecar lacks")



PRIOR = typer.Option(
    None, help="decoder-side prior after the decode: 'codebook' (Code-RSIC, shipped) or a prior directory")
FIDELITY = typer.Option(None, help="with --prior: trust in the decode, 1 (plain decode) .. 0 (full prior); "
                                    "default: the prior's own (0.5 for the shipped one)")
DEVICE = typer.Option("cpu", help="cpu, cuda, cuda:N or auto (the GPU if there is one) for the networks; "
                                   "the entropy decode is exact on either")
PRECISION = typer.Option("fp32", help="fp32, bf16 or fp16 (CUDA) autocast of the ground networks")


#: decompress options beyond the one-file PNG decode (products, post-decode priors, batches)
PRODUCT = dict(
    dtype=typer.Option(
        None, help="GeoTIFF sample type (default: the source's, stretch inverted; uint8: the coded picture)"),
    co=typer.Option(None, "--co", help="GDAL COG creation option KEY=VALUE (repeatable)"),
    enhance=typer.Option(False, help="enhance the decode with the LDM-RSIC model trained on this model's decodes "
                                     "(written as the plain decode is: fill, band names, source units, tags)"),
    enhance_steps=typer.Option(0, help="DDIM steps of the enhancer's prior LDM (0: its regressor)"),
)
REGION = dict(
    window=typer.Option(None, "--window", metavar="COL,ROW,W,H",
                        help="decode only this pixel window (only the tiles it needs); georeferencing shifted"),
    bbox=typer.Option(None, "--bbox", metavar="MINX,MINY,MAXX,MAXY",
                      help="decode only the pixels this box in the file's CRS touches (as --window)"),
    reduce=typer.Option(0, "--reduce", metavar="K",
                        help="2^K times smaller output (0..6): 2^K x 2^K block means of the decode, computed "
                             "row by row (decodes every tile: not faster than a full decode)"),
)


