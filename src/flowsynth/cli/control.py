"""``flowsynth serve``, ``flowsynth macro``, ``flowsynth interpolate`` and ``flowsynth map``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

__all__ = ["register"]


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="checkpoint of a latent model (default: the shipped flow_reg model)")
    parser.add_argument("--data", type=Path, help="dataset whose sounds are the presets (and the knobs' reference)")
    parser.add_argument("--presets", help="presets when there is no dataset: 'factory' (the synth's) or a JSON file")
    parser.add_argument("--anchors", type=int, default=6, help="sounds each latent dimension is swept around")
    parser.add_argument("--sweep-steps", type=int, default=5, help="knob values per measuring sweep")
    parser.add_argument("--visible", type=int, default=8, help="macro knobs shown (the others are hidden knobs)")
    parser.add_argument("--cache-dir", type=Path, help="where the knobs' measurements are cached")
    parser.add_argument("--no-cache", action="store_true", help="measure the knobs again, keep nothing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the anchors, the bank subset and the noise")
    parser.add_argument("--threads", type=int, help="torch CPU threads (serve: 1 by default)")
    parser.add_argument(
        "--semantic-knobs",
        choices=("auto", "measured", "steered", "guided", "validated"),
        default="auto",
        help="semantic knobs: a flow_dis model's own, else validated with --data and measured without (auto), "
        "or measured, steered, guided or validated (the best of those three per pair); all but measured "
        "need --data",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the control commands."""
    serve = subparsers.add_parser(
        "serve",
        help="play a model as an instrument over OSC, MIDI, audio and a web page",
        description="Serve a model as an instrument in one process: OSC, MIDI, live audio and a web page. "
        "Everything binds 127.0.0.1 (this machine only) unless --host says otherwise.",
    )
    _add_model_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    serve.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port (0: any free port)")
    serve.add_argument("--http-port", type=int, default=8000, help="web page TCP port (0: any free port)")
    serve.add_argument("--no-osc", action="store_true", help="no OSC server")
    serve.add_argument("--no-web", action="store_true", help="no web page")
    serve.add_argument("--midi", action="store_true", help="listen to MIDI (a port named flowsynth)")
    serve.add_argument("--midi-port", help="connect to this MIDI source instead")
    serve.add_argument("--midi-api", choices=("alsa", "jack"), help="MIDI system (default: the system's)")
    serve.add_argument("--audio", action="store_true", help="play notes on the audio output")
    serve.add_argument("--audio-device", help="sounddevice output device (index or name)")
    serve.add_argument("--block-size", type=int, default=512, help="audio frames per callback")
    serve.set_defaults(func=run_serve)

    macro = subparsers.add_parser("macro", help="set macro / semantic knobs of a model and render the sound")
    _add_model_args(macro)
    macro.add_argument("--set", default="", help="macro knobs, INDEX=VALUE,... with values in [-1, 1]")
    macro.add_argument("--semantic", default="", help="semantic knobs, INDEX=VALUE,... with values in [-1, 1]")
    macro.add_argument("--preset", help="start from this preset: bank index or name, JSON preset or sound file")
    macro.add_argument("--no-freeze", action="store_true", help="hidden knobs go back to their centre")
    macro.add_argument("--note", type=float, help="MIDI note (default: the model's)")
    macro.add_argument("--out", type=Path, help="output sound file (.wav, .flac, ...)")
    macro.add_argument("--preset-out", type=Path, help="write the resulting preset as JSON too")
    macro.add_argument("--list", action="store_true", help="print the knobs and what they do")
    macro.set_defaults(func=run_macro)

    interpolate = subparsers.add_parser(
        "interpolate", help="interpolate between two presets or sounds (latent vs linear)"
    )
    interpolate.add_argument("start", help="first preset: bank index or name, JSON preset or sound file")
    interpolate.add_argument("end", help="second preset")
    _add_model_args(interpolate)
    interpolate.add_argument("--steps", type=int, default=9, help="steps along the path, ends included")
    interpolate.add_argument(
        "--path",
        choices=("straight", "geodesic"),
        default="straight",
        help="latent path: a straight line, or bent to even steps in the decoded sound (a few seconds more)",
    )
    interpolate.add_argument("--out", type=Path, required=True, help="output folder (sounds, JSON report, PNG)")
    interpolate.set_defaults(func=run_interpolate)

    mapping = subparsers.add_parser("map", help="place every preset of a dataset or bank on a 2-D latent map (PNG)")
    _add_model_args(mapping)
    mapping.add_argument("--out", type=Path, required=True, help="output PNG")
    mapping.add_argument("--json", type=Path, help="write the points (names, positions, descriptors) as JSON too")
    mapping.add_argument("--color-by", default="centroid_hz", help="descriptor that colours the dots")
    mapping.add_argument("--labels", type=int, default=12, help="preset names written on the map")
    mapping.add_argument(
        "--limit",
        type=int,
        default=2000,
        help="most dataset sounds placed (a seeded subset); a preset bank is placed whole",
    )
    mapping.set_defaults(func=run_map)


def _knobs(text: str, option: str) -> dict[int, float]:
    """``"0=0.8,3=-1"`` -> ``{0: 0.8, 3: -1.0}``."""
    values: dict[int, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        index, _, value = item.partition("=")
        try:
            values[int(index)] = float(value)
        except ValueError:
            raise ValueError(f"{option} takes INDEX=VALUE,... (e.g. 0=0.8,3=-1), got {item!r}") from None
        if not math.isfinite(values[int(index)]):
            raise ValueError(f"{option}: {item!r} is not a finite number")
    return values


def _threads(args: argparse.Namespace, default: int | None = None) -> None:
    threads = args.threads or default
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def _model(args: argparse.Namespace) -> Path:
    """The checkpoint: ``--model``, or the model shipped with flowsynth."""
    if args.model is not None:
        return Path(args.model)
    from flowsynth.matching import default_model_path

    shipped = default_model_path()
    if shipped is None:
        raise ValueError("no --model given and no model shipped with flowsynth: pass --model PATH (flowsynth train)")
    return shipped


def _instrument(args: argparse.Namespace, bank_limit: int = 2000):
    from flowsynth.control import AnalysisConfig, ControlSetup, build_instrument

    _threads(args, 1 if getattr(args, "command", None) == "serve" else None)
    if args.data and args.presets:
        raise ValueError("give --data or --presets, not both")
    analysis = AnalysisConfig(args.anchors, args.sweep_steps, args.visible, seed=args.seed)
    data = str(args.data) if args.data else None
    setup = ControlSetup(
        data=data, presets=args.presets, bank_limit=bank_limit, analysis=analysis, seed=args.seed,
        semantic=args.semantic_knobs,
    )  # fmt: skip
    return build_instrument(_model(args), setup, args.cache_dir, use_cache=not args.no_cache, log=_print)


def _print(line: str) -> None:
    print(line, flush=True)


def run_serve(args: argparse.Namespace) -> int:
    from flowsynth.serve import ServeConfig, Server

    device = int(args.audio_device) if args.audio_device and args.audio_device.isdigit() else args.audio_device
    config = ServeConfig(
        host=args.host,
        osc_port=None if args.no_osc else args.osc_port,
        http_port=None if args.no_web else args.http_port,
        midi=args.midi or bool(args.midi_port),
        midi_port=args.midi_port,
        midi_api=args.midi_api,
        audio=args.audio,
        audio_device=device,
        block_size=args.block_size,
    )
    instrument = _instrument(args)
    server = Server(instrument, config)
    try:
        server.start()
    except OSError as error:
        raise ValueError(f"cannot start the server on {args.host}: {error} (choose other ports?)") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: other machines can drive it and make it read sound files here")
    print("\n".join(server.describe()) + "\nCtrl-C stops.", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def run_macro(args: argparse.Namespace) -> int:
    from flowsynth.audio import save_audio

    macros, semantic = _knobs(args.set, "--set"), _knobs(args.semantic, "--semantic")
    if not (args.out or args.preset_out or args.list):
        raise ValueError("nothing to do: give --out (a sound), --preset-out (a preset) or --list")
    instrument = _instrument(args)
    instrument.set_freeze(not args.no_freeze)
    if args.preset:
        params, name = instrument.resolve(args.preset)
        instrument.load_params(params, name)
    if args.list:
        print(instrument.macros.table())
        for index, knob in enumerate(instrument.semantic.knobs):
            print(f"semantic {index}: {knob.name} ({knob.kind}{', ' + knob.descriptor if knob.descriptor else ''})")
    if macros:
        instrument.set_macros(macros)
    if semantic:
        instrument.set_semantic(semantic)
    if args.out:
        save_audio(args.out, instrument.render(args.note), instrument.space.sample_rate)
        knobs = ", ".join(f"{m['index']}={m['value']:+.2f}" for m in instrument.state()["macros"] if m["visible"])
        print(f"{args.out}: from {instrument.name}; macro knobs {knobs}")
    if args.preset_out:
        _write_json(args.preset_out, instrument.preset_json())
        print(f"{args.preset_out}: preset")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    import torch

    from flowsynth.audio import save_audio
    from flowsynth.control import compare_paths
    from flowsynth.control.interpolate import save_comparison_plot

    if args.steps < 3:
        raise ValueError(f"--steps must be at least 3 (both ends and one step between), got {args.steps}")
    instrument = _instrument(args)
    space = instrument.space
    (params_a, name_a), (params_b, name_b) = instrument.resolve(args.start), instrument.resolve(args.end)
    report = compare_paths(space, params_a, params_b, args.steps, method=args.path, with_audio=True)
    for kind, audio in report.pop("audio").items():
        for step, sound in enumerate(torch.nan_to_num(audio)):
            save_audio(args.out / kind / f"step_{step:02d}.wav", sound, space.sample_rate)
    report.update(start=name_a, end=name_b, model=str(_model(args)))
    _write_json(args.out / "interpolation.json", report)
    save_comparison_plot(args.out / "interpolation.png", report, f"{name_a} -> {name_b}")
    print(f"{name_a} -> {name_b}, {args.steps} steps, {args.path} latent path")
    print("smoothness (RMS of the 2nd difference, lower is smoother):")
    print(f"{'descriptor':<22} {'latent':>8} {'linear':>8}")
    for name in report["descriptors"]:
        print(f"{name:<22} {report['latent'][name]:>8.4f} {report['linear'][name]:>8.4f}")
    print(
        f"latent path smoother on {report['smoother_on']} of {len(report['descriptors'])} descriptors; sounds in {args.out}"
    )
    return 0


def run_map(args: argparse.Namespace) -> int:
    from flowsynth.control import PresetBank, SoundSpace, preset_map

    if args.data and args.presets:
        raise ValueError("give --data or --presets, not both")
    if not (args.data or args.presets):
        raise ValueError("map needs presets to place: give --data DATASET or --presets factory|FILE.json")
    _threads(args)
    space = SoundSpace.from_checkpoint(_model(args), seed=args.seed)
    if args.data:
        bank = PresetBank.from_dataset(args.data, "all", args.limit, args.seed)
    else:
        bank = PresetBank.from_presets(space, args.presets)
    placed = preset_map(space, bank)
    color_by = args.color_by if bank.descriptors else ""
    placed.save_png(args.out, color_by=color_by, labels=args.labels, title=f"{len(bank)} presets, {space.model.name}")
    if args.json:
        _write_json(args.json, placed.to_json())
    print(
        f"{args.out}: {len(bank)} presets; PC 1 and 2 explain {100 * sum(placed.explained):.0f}% of the latent variance"
    )
    return 0


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
