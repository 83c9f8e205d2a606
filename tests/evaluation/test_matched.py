"""`cosmic compare` (:mod:`cosmic.evaluation.matched`): COSMIC and JPEG2000 at the same measured bpp."""

from __future__ import annotations


def test_compare_leaves_out_images_where_jpeg2000_missed(tmp_path):
    """`cosmic compare`: an image where the JPEG2000 rate search missed COSMIC's bpp by more
    than 5 % is flagged in the report and left out of every mean."""
    from cosmic.evaluation.matched import write_report

    def row(name, bpp, j2k_bpp, missed):
        return {"image": name, "width": 256, "height": 256,
                "cosmic": {"bytes": 1, "bpp": bpp, "psnr": 30.0, "ms_ssim": 0.9, "encode_s": 1, "decode_s": 1},
                "jpeg2000": {"bytes": 1, "bpp": j2k_bpp, "psnr": 20.0 if missed else 28.0, "ms_ssim": 0.8,
                             "missed": missed}}

    rows = [row("a.png", 0.10, 0.101, False), row("b.png", 0.10, 0.05, True)]
    s = write_report(rows, tmp_path, "t")
    assert s["images"] == 1 and s["j2k_missed"] == ["b.png"]
    assert s["jpeg2000"]["psnr"] == 28.0 and s["jpeg2000"]["bpp"] == 0.101
    assert "b.png" in (tmp_path / "summary.md").read_text()
