"""``flowsynth synths`` and ``flowsynth render``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the synth commands."""
    synths = subparsers.add_parser("synths", help="list the available synths and their parameters")
    synths.add_argument("--json", action="store_true", help="print JSON")
    synths.add_argument("--params", metavar="SYNTH", help="list one synth's parameters instead")
    synths.set_defaults(func=run_synths)

    render = subparsers.add_parser("render", help="render one sound to a file")
    render.add_argument("--synth", default="builtin-32", help="synth name (see `flowsynth synths`)")
    source = render.add_mutually_exclusive_group(required=True)
    source.add_argument("--params", type=Path, help="JSON preset: {'params': {NAME: value in units}}")
    source.add_argument("--preset", help="name of one of the synth's factory presets")
    source.add_argument("--random", type=int, metavar="SEED", help="random parameters from this seed")
    render.add_argument("--out", type=Path, required=True, help="output audio file (.wav, .flac)")
    render.add_argument("--note", type=float, default=60.0)
    render.add_argument("--velocity", type=int, default=100)
    render.add_argument("--note-s", type=float, default=3.0)
    render.add_argument("--render-s", type=float, default=4.0)
    render.add_argument("--sample-rate", type=int, default=22050)
    render.set_defaults(func=run_render)


def run_synths(args: argparse.Namespace) -> int:
    from flowsynth.synth import available_synths, get_synth

    if args.params:
        synth = get_synth(args.params)
        rows = [p.describe() | {"learned": p.name in synth.space.learned} for p in synth.params]
        print(json.dumps(rows, indent=2) if args.json else "\n".join(_param_line(r) for r in rows))
        return 0
    rows = []
    for name in available_synths():
        try:
            synth = get_synth(name)
            rows.append({"name": name, "learned": synth.num_learned, "params": len(synth.params)})
        except (OSError, RuntimeError, ValueError) as error:
            rows.append({"name": name, "error": str(error)})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            detail = row.get("error") or f"{row['learned']} learned of {row['params']} parameters"
            print(f"{row['name']:<24} {detail}")
    return 0


def _param_line(row: dict) -> str:
    mark = "*" if row["learned"] else " "
    return f"{mark} {row['name']:<22} {row['min']:>9.4g} .. {row['max']:<9.4g} {row['units']:<10} {row['description']}"


def run_render(args: argparse.Namespace) -> int:
    import torch

    from flowsynth.audio import save_audio
    from flowsynth.synth import get_synth
    from flowsynth.synth.presets import load_presets, read_preset_file

    synth = get_synth(args.synth)
    if args.params:
        vector = read_preset_file(synth, args.params)[0].vector
    elif args.preset:
        presets = {p.name: p for p in load_presets(synth, "factory")}
        if args.preset not in presets:
            raise ValueError(f"no preset {args.preset!r}; {len(presets)} presets, e.g. {', '.join(list(presets)[:5])}")
        vector = presets[args.preset].vector
    else:
        vector = torch.rand(synth.num_learned, generator=torch.Generator().manual_seed(args.random))
    audio = synth.render(vector[None], args.note, args.velocity, args.note_s, args.render_s, args.sample_rate)
    save_audio(args.out, audio[0], args.sample_rate)
    print(f"wrote {args.out} ({args.render_s:g} s, peak {float(audio.abs().max()):.3f})")
    return 0
