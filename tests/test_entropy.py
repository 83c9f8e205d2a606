

def test_corrupt_tile_of_a_shipped_model_decodes_one_way_20_times():
    """The issue's case: a real model's tile, payload altered behind a valid CRC."""
    from cosmic.onboard.scene import _to_tensor, iter_tiles
    from cosmic.zoo import DEFAULT_MODEL, load_onboard

    codec, _ = load_onboard(DEFAULT_MODEL)
    out = codec.compress(_to_tensor(list(iter_tiles(golden_image(256, 256), 256))))
    (y,), (z,) = out["strings"]
    rng = np.random.default_rng(3)
    for cut in (len(y), len(y) // 2):
        bad = bytearray(y[:cut])
        for i in rng.integers(0, cut, 4):
            bad[int(i)] = int(rng.integers(0, 256))
        outcomes = {_outcome(codec, bytes(bad), z, out["shape"]) for _ in range(20)}
        assert len(outcomes) == 1
