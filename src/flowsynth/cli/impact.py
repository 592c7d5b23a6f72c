"""``flowsynth impact ...``: the impact instrument's commands (describe, dataset, train, generate, render, play)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``impact`` and its sub-commands."""
    parser = subparsers.add_parser("impact", help="descriptor-controlled impact generator (the Neurorack)")
    commands = parser.add_subparsers(dest="impact_command", metavar="SUBCOMMAND", required=True)
    _add_describe(commands)
    _add_dataset(commands)
    _add_train(commands)
    _add_generate(commands)
    _add_render(commands)
    _add_play(commands)
    _add_export(commands)


def _add_describe(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("describe", help="print (and plot) the 7 descriptor curves of a sound")
    p.add_argument("audio", type=Path, help="a WAV/FLAC/AIFF file")
    p.add_argument("--png", type=Path, help="write a plot of the curves to this PNG file")
    p.add_argument("--json", action="store_true", help="print every frame's values as JSON instead of a table")
    p.add_argument("--sample-rate", type=int, default=22050, help="analysis sample rate in Hz (default 22050)")
    p.set_defaults(func=_run_describe)


def _run_describe(args: argparse.Namespace) -> int:
    from flowsynth.impact._io import load_mono
    from flowsynth.impact.descriptors import DescriptorConfig, describe
    from flowsynth.impact.report import curves_table, curves_to_json, plot_curves

    config = DescriptorConfig(sample_rate=args.sample_rate)
    curves = describe(load_mono(args.audio, config.sample_rate), config)
    if args.json:
        print(json.dumps(curves_to_json(curves, config)))
    else:
        print(f"{args.audio}: {curves.shape[1]} frames at {config.frame_rate_hz:.2f} frames/s")
        print(curves_table(curves))
    if args.png:
        plot_curves(curves, config, args.png, title=args.audio.name)
    return 0


def _add_dataset(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("dataset", help="cut real drum-kit recordings into a one-shot dataset (HDF5)")
    p.add_argument("--out", type=Path, required=True, help="HDF5 file to write (atomically)")
    p.add_argument("--kits", type=Path, nargs="+", help="kit folders (default: Debian's hydrogen-drumkits)")
    p.add_argument("--duration-s", type=float, default=1.0, help="clip length in seconds (default 1.0)")
    p.add_argument("--sample-rate", type=int, default=22050, help="clip sample rate in Hz (default 22050)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/valid/test split (default 0)")
    p.add_argument("--limit", type=int, help="use only the first N files (for quick trials)")
    p.set_defaults(func=_run_dataset)


def _run_dataset(args: argparse.Namespace) -> int:
    from flowsynth.impact.dataset import DEFAULT_KITS, DatasetSpec, build_dataset, find_sources

    spec = DatasetSpec(sample_rate=args.sample_rate, duration_s=args.duration_s, seed=args.seed)
    sources = find_sources(args.kits or [DEFAULT_KITS])
    if args.limit is not None:
        sources = sources[: max(args.limit, 0)]
    summary = build_dataset(args.out, sources, spec, progress=_progress("cutting"))
    print(
        f"\n{args.out}: {summary['clips']} clips from {summary['instruments']} instruments, "
        f"{summary['per_split']}, {summary['duplicates']} duplicates dropped, {len(summary['skipped'])} skipped"
    )
    return 0


def _progress(what: str):
    import sys

    def report(done: int, total: int) -> None:
        if done % 25 == 0 or done == total - 1:
            print(f"\r{what} {done + 1}/{total}", end="", file=sys.stderr, flush=True)

    return report


def _add_train(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train", help="train the generator (resumes from OUT/last.pt when present)")
    p.add_argument("--data", type=Path, required=True, help="dataset made by 'flowsynth impact dataset'")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints last.pt, best.pt, rewind.pt)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps of the whole run (default 3000)")
    p.add_argument("--minutes", type=float, help="stop this call after M minutes (resume later)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--harmonics", type=int, default=48)
    p.add_argument("--valid-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights (a new run)")
    p.add_argument("--noise-floor", type=float, default=0.05, help="noise kept in periodic frames (default 0.05)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from flowsynth.impact.train import TrainConfig, train

    config = TrainConfig(
        steps=args.steps,
        minutes=args.minutes,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        valid_every=args.valid_every,
        rewind_step=min(args.valid_every, args.steps),
        seed=args.seed,
        threads=args.threads,
    )
    kwargs = {"hidden_size": args.hidden_size, "num_harmonics": args.harmonics, "noise_floor": args.noise_floor}
    summary = train(args.data, args.out, config, kwargs, log=lambda line: print(line, flush=True), init=args.init)
    print(
        f"{args.out}: {summary['steps']} steps, best valid loss {summary['best_valid']:.3f}, "
        f"{summary['parameters']} parameters"
    )
    return 0


def _load_model(checkpoint: Path | None):
    from flowsynth.impact.generate import default_generator
    from flowsynth.impact.train import load_generator

    return load_generator(checkpoint)[0] if checkpoint else default_generator()


def _add_generate(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("generate", help="generate an impact from a reference, edited or merged")
    p.add_argument("--impact", help="a shipped reference name (see --list) or an audio file")
    p.add_argument("--second", help="second impact to merge with (name or audio file)")
    p.add_argument("--degree", type=float, default=0.5, help="merge degree in [0, 1] (default 0.5)")
    for name in ("richness", "noisiness", "brightness"):
        p.add_argument(f"--{name}", type=float, default=0.0, help=f"{name} control in [-1, 1] (0: unchanged)")
    p.add_argument("--pitch-semitones", type=float, default=0.0, help="pitch shift in semitones")
    p.add_argument("--checkpoint", type=Path, help="generator checkpoint (default: the shipped one)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--out", type=Path, help="WAV file to write")
    p.add_argument("--list", action="store_true", help="list the shipped reference impacts and exit")
    p.set_defaults(func=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from flowsynth.impact._io import save_wav
    from flowsynth.impact.descriptors import DESCRIPTORS, DescriptorConfig, describe
    from flowsynth.impact.generate import edit_curves, generate, merge_curves, reference_curves, reference_names

    if args.list:
        print("\n".join(reference_names()))
        return 0
    if args.impact is None or args.out is None:
        raise ValueError("give --impact (a name from --list, or an audio file) and --out FILE.wav")
    model = _load_model(args.checkpoint)
    rate = int(model.sample_rate)
    curves = reference_curves(args.impact, rate)
    if args.second:
        curves = merge_curves(curves, reference_curves(args.second, rate), args.degree)
    curves = edit_curves(curves, args.richness, args.noisiness, args.brightness, args.pitch_semitones, rate)
    audio = generate(model, curves, seed=args.seed)
    save_wav(args.out, audio, rate)
    measured = describe(audio, DescriptorConfig(sample_rate=rate))[:, : curves.shape[1]]
    loud = curves[0] > -60.0
    print(f"{args.out}: {len(audio) / rate:.2f} s at {rate} Hz; descriptors over frames above -60 dB:")
    print(f"{'descriptor':<14} {'requested':>10} {'measured':>10}")
    for i, d in enumerate(DESCRIPTORS):
        print(f"{d.name:<14} {np.mean(curves[i, loud]):>10.3f} {np.mean(measured[i, loud]):>10.3f}  {d.unit}")
    return 0


def _add_render(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("render", help="play a score of gates and CV curves offline into a WAV file")
    p.add_argument("--gates", type=Path, required=True, help="score JSON (see 'flowsynth.impact.score')")
    p.add_argument("--out", type=Path, required=True, help="WAV file to write")
    p.add_argument("--checkpoint", type=Path, help="generator checkpoint (default: the shipped one)")
    p.add_argument("--onnx", type=Path, help="run an exported ONNX generator instead of torch")
    p.set_defaults(func=_run_render)


def _instrument(args: argparse.Namespace, impact: str, second: str, output_rate: int | None, seed: int):
    from flowsynth.impact.generate import reference_curves
    from flowsynth.impact.instrument import ImpactInstrument

    if getattr(args, "onnx", None):
        from flowsynth.impact.export import OnnxGenerator

        model = OnnxGenerator(args.onnx)
    else:
        model = _load_model(args.checkpoint)
    rate = int(model.sample_rate)
    first, other = reference_curves(impact, rate), reference_curves(second, rate)
    return ImpactInstrument(model, first, other, output_rate, seed)


def _run_render(args: argparse.Namespace) -> int:
    from flowsynth.impact._io import save_wav
    from flowsynth.impact.score import load_score, render_score

    score = load_score(args.gates)
    instrument = _instrument(args, score.impact, score.second, None, score.seed)
    audio, engine = render_score(score, instrument, instrument.output_rate, instrument.num_samples)
    peak = float(abs(audio).max()) if audio.size else 0.0
    save_wav(args.out, audio, instrument.output_rate)
    print(
        f"{args.out}: {score.duration_s:.2f} s, {engine.triggers_played} triggers, {engine.renders} renders, "
        f"peak {peak:.2f}" + (" (clipped)" if peak > 1.0 else "")
    )
    return 0


def _add_play(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("play", help="play in real time: MIDI notes/OSC/CV inputs are gates, CCs are CVs")
    p.add_argument("--impact", default="", help="current impact: reference name or audio file")
    p.add_argument("--second", default="", help="impact merged in by gate 2")
    p.add_argument("--checkpoint", type=Path, help="generator checkpoint (default: the shipped one)")
    p.add_argument("--onnx", type=Path, help="run an exported ONNX generator instead of torch")
    p.add_argument("--device", help="sounddevice output device (name or index)")
    p.add_argument("--sample-rate", type=int, help="device sample rate (default: the model's, 22050)")
    p.add_argument(
        "--block-size",
        type=int,
        default=128,
        help="audio block in samples (default 128: a trigger sounds within 11.6 ms)",
    )
    p.add_argument("--midi", help="MIDI input port name (notes 36/38 = gates 1/2, CC 1/2/3 = CVs)")
    p.add_argument("--osc-port", type=int, help="UDP port for OSC (/gate N, /cv/richness|noisiness|degree)")
    p.add_argument("--cv-input", action="store_true", help="read gates/CVs from input channels 1-5 (DC-coupled)")
    p.add_argument("--duration-s", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and MIDI inputs, then exit")
    p.set_defaults(func=_run_play)


def _run_play(args: argparse.Namespace) -> int:
    from flowsynth.impact.engine import EngineConfig
    from flowsynth.impact.generate import reference_names
    from flowsynth.impact.realtime import CvInput, MidiMap, Player, osc_dispatcher

    if args.list_devices:
        return _list_devices()
    names = reference_names()
    impact, second = args.impact or names[0], args.second or names[min(1, len(names) - 1)]
    instrument = _instrument(args, impact, second, args.sample_rate, 0)
    config = EngineConfig(instrument.output_rate, args.block_size, instrument.num_samples)
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    player = Player(instrument, config, device, CvInput() if args.cv_input else None)
    engine = player.engine
    closers = []
    with player:
        if args.midi:
            import mido

            closers.append(mido.open_input(args.midi, callback=lambda m: MidiMap().handle(engine, m, player.wake)))
        if args.osc_port:
            closers.append(_serve_osc(osc_dispatcher(engine, player.wake), args.osc_port))
        print(
            f"playing {impact} (gate 1) and its merge with {second} (gate 2) at {config.sample_rate} Hz, "
            f"block {config.block_size}; Ctrl-C to stop",
            flush=True,
        )
        _wait(args.duration_s)
        for closer in closers:
            closer.close() if hasattr(closer, "close") else closer.shutdown()
    s = player.stats
    print(
        f"{s.blocks} blocks, {s.triggers} triggers, {s.renders} renders, {s.underruns} underruns, "
        f"{s.late_callbacks} late callbacks, longest callback {s.max_callback_s * 1000:.2f} ms"
    )
    return 0


def _serve_osc(dispatcher, port: int):
    import threading

    from pythonosc.osc_server import ThreadingOSCUDPServer

    server = ThreadingOSCUDPServer(("127.0.0.1", port), dispatcher)
    threading.Thread(target=server.serve_forever, name="impact-osc", daemon=True).start()
    return server


def _wait(duration_s: float | None) -> None:
    import time

    try:
        if duration_s is None:
            while True:
                time.sleep(1.0)
        time.sleep(max(0.0, duration_s))
    except KeyboardInterrupt:
        pass


def _list_devices() -> int:
    import sounddevice

    print(sounddevice.query_devices())
    try:
        import mido

        print("MIDI inputs:", ", ".join(mido.get_input_names()) or "none")
    except (ImportError, OSError) as error:
        print(f"MIDI inputs: unavailable ({error})")
    return 0


def _add_export(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("export", help="export the generator as ONNX (run with --onnx by render and play)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--checkpoint", type=Path, help="generator checkpoint (default: the shipped one)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    import numpy as np

    from flowsynth.impact.export import OnnxGenerator, export_onnx
    from flowsynth.impact.generate import generate, reference_curves

    model = _load_model(args.checkpoint)
    path = export_onnx(model, args.out)
    curves = reference_curves("snare", int(model.sample_rate))
    difference = float(np.abs(generate(OnnxGenerator(path), curves) - generate(model, curves)).max())
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB, largest difference from torch {difference:.2e}")
    return 0
