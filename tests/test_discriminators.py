"""MPD, MRD and the sub-band CQT discriminator against NVIDIA BigVGAN's (same state dict, same input), and on their own."""

import pytest
import torch

from vocoder.audio import ConstantQTransform
from vocoder.models.discriminators import (
    DEFAULTS,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    MultiScaleSubbandCQTDiscriminator,
    build_discriminators,
)
from vocoder.models.losses import discriminator_loss, feature_loss, generator_loss

# NVIDIA's modules use the deprecated weight norm and an implicit STFT window: their warnings, not ours
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*weight_norm. is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:A window was not provided:UserWarning"),
]

V2_CQTD = {
    "cqtd_filters": 128, "cqtd_max_filters": 1024, "cqtd_filters_scale": 1, "cqtd_dilations": [1, 2, 4],
    "cqtd_hop_lengths": [512, 256, 256], "cqtd_n_octaves": [9, 9, 9], "cqtd_bins_per_octaves": [24, 36, 48],
}
BASE = {
    "use_spectral_norm": False, "discriminator_channel_mult": 1, "mpd_reshapes": [2, 3, 5, 7, 11],
    "resolutions": [[1024, 120, 600], [2048, 240, 1200], [512, 50, 240]],
}


def _pair(batch: int = 1, length: int = 4096, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(batch, 1, length, generator=g), 0.3 * torch.randn(batch, 1, length, generator=g)


def _flat(outputs) -> list[torch.Tensor]:
    y_d_rs, y_d_gs, fmap_rs, fmap_gs = outputs
    return [*y_d_rs, *y_d_gs, *(t for f in fmap_rs for t in f), *(t for f in fmap_gs for t in f)]


def _max_diff(ours, theirs) -> float:
    a, b = _flat(ours), _flat(theirs)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def _assert_same_gradients(ours, theirs, y, y_hat) -> None:
    """Backward through the LS-GAN loss of both: input and parameter gradients agree."""
    g_ours, g_theirs = y_hat.clone().requires_grad_(), y_hat.clone().requires_grad_()
    discriminator_loss(*ours(y, g_ours)[:2])[0].backward()
    discriminator_loss(*theirs(y, g_theirs)[:2])[0].backward()
    assert (g_ours.grad - g_theirs.grad).abs().max().item() <= 1e-5 * g_theirs.grad.abs().max().item()
    params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        ref = params[name.replace("parametrizations.weight.original0", "weight_g")
                     .replace("parametrizations.weight.original1", "weight_v")]
        assert (p.grad - ref.grad).abs().max().item() <= 1e-5 * ref.grad.abs().max().item(), name


def _reference(name: str, cfg: dict):
    R = pytest.importorskip("bigvgan.discriminators")
    env = pytest.importorskip("bigvgan.env")
    torch.manual_seed(0)
    return getattr(R, name)(env.AttrDict(dict(cfg)))


@pytest.mark.parametrize("spectral", [False, True])
def test_mpd_matches_bigvgan(spectral):
    cfg = {**BASE, "use_spectral_norm": spectral, "discriminator_channel_mult": 0.25}  # 1: see below
    theirs = _reference("MultiPeriodDiscriminator", cfg).eval()
    ours = MultiPeriodDiscriminator.from_config(cfg).eval()
    ours.load_state_dict(theirs.state_dict())
    y, y_hat = _pair(length=4000)  # not a multiple of the periods: reflect padding
    with torch.no_grad():
        assert _max_diff(ours(y, y_hat), theirs(y, y_hat)) <= 1e-5
    if not spectral:
        _assert_same_gradients(ours, theirs, y, y_hat)


@pytest.mark.parametrize("spectral", [False, True])
def test_mrd_matches_bigvgan(spectral):
    cfg = {**BASE, "use_spectral_norm": spectral}
    if spectral:
        cfg["mrd_channel_mult"] = 0.5  # BigVGAN's MRD-only override
    theirs = _reference("MultiResolutionDiscriminator", cfg).eval()
    ours = MultiResolutionDiscriminator.from_config(cfg).eval()
    ours.load_state_dict(theirs.state_dict())
    y, y_hat = _pair()
    with torch.no_grad():
        assert _max_diff(ours(y, y_hat), theirs(y, y_hat)) <= 1e-5


def test_full_size_state_dicts_load():
    """BigVGAN's released MPD / MRD shapes (channel multiplier 1): every key and shape has its place here."""
    theirs = [_reference(n, BASE).state_dict() for n in ("MultiPeriodDiscriminator", "MultiResolutionDiscriminator")]
    ours = [MultiPeriodDiscriminator.from_config(BASE), MultiResolutionDiscriminator.from_config(BASE)]
    for module, state in zip(ours, theirs):
        module.load_state_dict(state)  # strict
        assert sum(p.numel() for p in module.parameters()) == sum(v.numel() for v in state.values())


@pytest.mark.parametrize("sampling_rate", [24000, 44100])
def test_cqtd_matches_bigvgan(sampling_rate):
    pytest.importorskip("nnAudio")
    cfg = {**BASE, **V2_CQTD, "sampling_rate": sampling_rate, "cqtd_filters": 16}
    theirs = _reference("MultiScaleSubbandCQTDiscriminator", cfg)
    ours = MultiScaleSubbandCQTDiscriminator.from_config(cfg)
    ours.load_state_dict(theirs.state_dict())
    y, y_hat = _pair(length=4096)
    with torch.no_grad():
        assert _max_diff(ours(y, y_hat), theirs(y, y_hat)) <= 1e-5
    if sampling_rate == 24000:
        _assert_same_gradients(ours, theirs, y, y_hat)


def test_cqtd_v2_state_dict_loads_both_ways_of_naming():
    """The released v2 shape (128 filters): every NVIDIA key and shape has its place here."""
    pytest.importorskip("nnAudio")
    cfg = {**BASE, **V2_CQTD, "sampling_rate": 24000}
    theirs = _reference("MultiScaleSubbandCQTDiscriminator", cfg).state_dict()
    ours = MultiScaleSubbandCQTDiscriminator.from_config(cfg)
    ours.load_state_dict(theirs)  # strict: legacy weight_g / weight_v are mapped
    mine = ours.state_dict()
    for key, value in theirs.items():
        if key.endswith(("weight_g", "weight_v")):
            continue
        assert torch.equal(mine[key], value), key  # buffers (CQT kernels, resampler) computed identically


@pytest.mark.parametrize(
    "sr,hop,bpo,octaves", [(48000, 512, 24, 9), (88200, 256, 48, 9), (16000, 512, 12, 4)]
)
def test_cqt_transform_matches_nnaudio(sr, hop, bpo, octaves):
    features = pytest.importorskip("nnAudio.features")
    theirs = features.cqt.CQT2010v2(sr=sr, hop_length=hop, n_bins=bpo * octaves, bins_per_octave=bpo,
                                    output_format="Complex", pad_mode="constant", verbose=False)
    ours = ConstantQTransform(sr, hop, n_bins=bpo * octaves, bins_per_octave=bpo)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    x = _pair(2, 4096)[0]
    a, b = ours(x), theirs(x)
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= 1e-5


def test_cqt_peaks_at_the_tone_bin():
    sr, bpo = 48000, 24
    cqt = ConstantQTransform(sr, 256, n_bins=bpo * 9, bins_per_octave=bpo)
    k = 150
    freq = 32.70 * 2 ** (k / bpo)
    t = torch.arange(16384) / sr
    z = cqt(torch.sin(2 * torch.pi * freq * t))
    mag = z.pow(2).sum(-1).sqrt()[0, :, 20:-20].mean(-1)
    assert mag.argmax().item() == k
    assert z.shape == (1, bpo * 9, 16384 // 256 + 1, 2)


def test_output_structure_and_shapes():
    y, y_hat = _pair(2, 2048)
    mpd = MultiPeriodDiscriminator(discriminator_channel_mult=0.125)
    mrd = MultiResolutionDiscriminator(discriminator_channel_mult=0.25)
    cqtd = MultiScaleSubbandCQTDiscriminator(24000, filters=8)
    for disc, n, layers in ((mpd, 5, 6), (mrd, 3, 6), (cqtd, 3, 5)):
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = disc(y, y_hat)
        assert len(y_d_rs) == len(y_d_gs) == len(fmap_rs) == len(fmap_gs) == n
        assert all(len(f) == layers for f in fmap_rs + fmap_gs)
        assert all(r.shape == g.shape and r.shape[0] == 2 for r, g in zip(y_d_rs, y_d_gs))
        assert all(torch.isfinite(t).all() for t in _flat((y_d_rs, y_d_gs, fmap_rs, fmap_gs)))
    assert all(s.dim() == 2 for s in mpd(y, y_hat)[0])  # MPD / MRD scores are flattened (B, N)
    assert all(s.dim() == 4 and s.shape[1] == 1 for s in cqtd(y, y_hat)[0])  # CQTD's are (B, 1, frames, bins)


def test_gradients_flow():
    y, y_hat = _pair(1, 2048)
    y_hat.requires_grad_()
    discs = [MultiPeriodDiscriminator(discriminator_channel_mult=0.125),
             MultiResolutionDiscriminator(discriminator_channel_mult=0.25),
             MultiScaleSubbandCQTDiscriminator(44100, filters=8, normalize_volume=True)]
    loss_d = sum(discriminator_loss(*d(y, y_hat.detach())[:2])[0] for d in discs)
    loss_d.backward()
    for d in discs:
        for name, p in d.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
        d.zero_grad()
    loss_g = 0.0
    for d in discs:
        _, y_d_gs, fmap_rs, fmap_gs = d(y, y_hat)
        loss_g = loss_g + generator_loss(y_d_gs)[0] + feature_loss(fmap_rs, fmap_gs)
    loss_g.backward()
    assert torch.isfinite(y_hat.grad).all() and y_hat.grad.abs().sum() > 0


def test_state_dict_round_trip():
    a, b = MultiResolutionDiscriminator(discriminator_channel_mult=0.25), MultiResolutionDiscriminator(
        discriminator_channel_mult=0.25)
    b.load_state_dict(a.state_dict())
    y, y_hat = _pair(1, 2048)
    assert all(torch.equal(p, q) for p, q in zip(_flat(a(y, y_hat)), _flat(b(y, y_hat))))
    assert not any("window" in k for k in a.state_dict())


def test_from_config_keys():
    cfg = {**BASE, "mpd_reshapes": [2, 3], "discriminator_channel_mult": 0.5, "mrd_channel_mult": 0.25,
           "mrd_use_spectral_norm": True}
    mpd = MultiPeriodDiscriminator.from_config(cfg)
    assert [d.period for d in mpd.discriminators] == [2, 3]
    assert mpd.discriminators[0].convs[0].out_channels == 16
    mrd = MultiResolutionDiscriminator.from_config(cfg)
    assert mrd.discriminators[0].convs[0].out_channels == 8
    assert hasattr(mrd.discriminators[0].convs[0], "weight_orig")  # spectral norm
    with pytest.raises(KeyError, match="sampling rate"):
        MultiScaleSubbandCQTDiscriminator.from_config(V2_CQTD)
    cqtd = MultiScaleSubbandCQTDiscriminator.from_config({**V2_CQTD, "cqtd_filters": 8}, sampling_rate=22050)
    assert len(cqtd.discriminators) == 3 and cqtd.discriminators[2].bins_per_octave == 48


def test_defaults_are_written_once():
    """The group's files set only what differs from DEFAULTS (which `discriminator/base` holds), and
    the constructors' defaults are DEFAULTS' values."""
    from pathlib import Path

    import yaml

    folder = Path(__file__).resolve().parents[1] / "vocoder" / "configs" / "discriminator"
    for path in folder.glob("*.yaml"):
        own = yaml.safe_load(path.read_text())
        assert own.pop("defaults") == ["base", "_self_"], path.name
        assert set(own) <= set(DEFAULTS), path.name
        assert all(own[k] != DEFAULTS[k] for k in own), path.name
    mpd, mrd = MultiPeriodDiscriminator(), MultiResolutionDiscriminator()
    assert tuple(mpd.mpd_reshapes) == DEFAULTS["mpd_reshapes"] and tuple(mrd.resolutions) == DEFAULTS["resolutions"]
    with pytest.raises(ValueError, match="unknown key.* mpd_reshape "):
        build_discriminators({"mpd_reshape": [2]}, 24000)
    assert set(build_discriminators({}, 24000)) == {"mpd", "mrd"}  # NVIDIA's default: MRD


def test_bad_inputs():
    mpd = MultiPeriodDiscriminator(periods=(2,), discriminator_channel_mult=0.125)
    y = torch.zeros(1, 1, 256)
    with pytest.raises(ValueError, match=r"generated audio must have shape \(B, 1, T\), got \(1, 256\)"):
        mpd(y, y[:, 0])
    with pytest.raises(ValueError, match="resolution is"):
        MultiResolutionDiscriminator(resolutions=((1024, 120),))
    with pytest.raises(ValueError, match="Nyquist"):
        ConstantQTransform(8000, 512, n_bins=9 * 24, bins_per_octave=24)
    with pytest.raises(ValueError, match="one entry per scale"):
        MultiScaleSubbandCQTDiscriminator(24000, hop_lengths=(512,), n_octaves=(9, 9))


def test_scores_without_features_and_checkpointed_are_the_same_numbers():
    """`features=False` gives the same scores and no feature maps; `checkpointing` (recomputing each
    sub-discriminator in backward) the same scores and gradients, bit for bit."""
    y, y_hat = _pair(1, 2048)
    results = []
    for features, checkpointing in ((True, False), (False, False), (False, True)):
        torch.manual_seed(0)
        mrd = MultiResolutionDiscriminator(discriminator_channel_mult=0.25, checkpointing=checkpointing)
        fake = y_hat.clone().requires_grad_()
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = mrd(y, fake, features=features)
        assert (len(fmap_rs), len(fmap_gs)) == ((3, 3) if features else (0, 0))
        discriminator_loss(y_d_rs, y_d_gs)[0].backward()
        results.append([*y_d_rs, *y_d_gs, fake.grad, *(p.grad for p in mrd.parameters())])
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))
