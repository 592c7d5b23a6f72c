"""The impact instrument (the Neurorack): descriptors -> generator -> real-time engine (gates, CVs) -> audio.

Modules: :mod:`~flowsynth.impact.descriptors` (the seven descriptor curves), :mod:`~flowsynth.impact.dataset`
(real one-shots from Debian's drum kits), :mod:`~flowsynth.impact.model` (the descriptor-conditioned
generator), :mod:`~flowsynth.impact.generate` (edits and merges of curves), :mod:`~flowsynth.impact.engine`
(the gate/CV engine, offline and real time). Heavy or optional dependencies load where used.
"""

__all__: list[str] = []
