"""Packs a trained impact generator and the reference impacts into ``src/flowsynth/assets/impact/``.

The checkpoint keeps only weights, constructor kwargs and metadata (no optimizer state). The references are
the descriptor curves of held-out (test split) real recordings, one per instrument family.

    python bench/impact_ship.py --checkpoint runs/impact/best.pt --data data/impacts.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from flowsynth.impact.dataset import load_dataset
from flowsynth.impact.train import load_checkpoint, load_generator, save_checkpoint

#: Shipped reference name -> test-split clip (``kit/file``); the first two are the instrument's defaults.
REFERENCES = {
    "tom": "ForzeeStereo/TomMid-2.wav",
    "crash": "The Black Pearl 1.0/SabianCrash-Hard.wav",
    "kick": "ElectricEmpireKit/EE_Kick_Hard_1.flac",
    "kick-electro": "HardElectro1/HardHse_K_03_B.flac",
    "snare": "ElectricEmpireKit/EE_Snare_1.flac",
    "hihat": "The Black Pearl 1.0/SabianHatClosed-Med.wav",
    "ride": "The Black Pearl 1.0/PaisteRideFlink-Med.wav",
    "splash": "ForzeeStereo/Splash10-2.wav",
    "clap": "HardElectro1/Amp_Clap_1.flac",
    "cajon": "Gimme A Hand 1.0/CajonSlaps-Med.wav",
    "hat-ring": "ElectricEmpireKit/EE_Hat_Ring_2.flac",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/impact/best.pt"))
    parser.add_argument("--data", type=Path, default=Path("data/impacts.h5"))
    parser.add_argument("--out", type=Path, default=Path("src/flowsynth/assets/impact"))
    args = parser.parse_args()
    model, meta = load_generator(args.checkpoint)
    state = load_checkpoint(args.checkpoint)
    meta = {**meta, "source_step": int(state.get("meta", {}).get("step", meta.get("step", -1)))}
    out = save_checkpoint(args.out / "generator.pt", model, meta)
    data = load_dataset(args.data)
    test = set(np.flatnonzero(data.split == 2))
    rows = []
    for clip in REFERENCES.values():
        index = data.names.index(clip)
        if index not in test:
            raise SystemExit(f"{clip} is not in the test split of {args.data}; choose held-out clips")
        rows.append(data.curves[index])
    np.savez_compressed(
        args.out / "references.npz",
        names=np.array(list(REFERENCES)),
        curves=np.stack(rows),
        sources=np.array(list(REFERENCES.values())),
    )
    print(f"{out}: {model.num_parameters} parameters, step {meta.get('step')}, valid {meta.get('valid_loss')}")
    print(f"{args.out / 'references.npz'}: {len(rows)} references")


if __name__ == "__main__":
    main()
