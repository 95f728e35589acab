"""What a result is measured against, in words: the captions of snnsim's tables and plots.

Every printed summary table and every energy plot states its baseline (the ANN model and the
hardware it runs on), the counting rules (which connections both sides count among them), the
first-layer convention, where the analog first layer ran when the chip has no MAC datapath, and
which way round its ratios are, so that a headline ratio can never be read without what it is
relative to.
"""

from __future__ import annotations

import pandas as pd

#: What each counting rule and first-layer convention means, for captions (keys: the choices
#: of :data:`snnsim.sim.replay.COUNTINGS` and :data:`snnsim.cost.FIRST_LAYER_CHOICES`).
COUNTING_RULES = {
    "snnsim": "snnsim's event-driven counts (every synaptic op a spike drives; docs/counting.md)",
    "neurobench": "NeuroBench 2.3 SynapticOperations rules (docs/counting.md)",
}
#: The connection-counting conventions (keys: :data:`snnsim.cost.CONNECTIONS_CHOICES`).
CONNECTION_RULES = {
    "inbounds": "SNN and ANN count the same in-bounds connections (padding taps never count)",
    "conventional": "SNN and ANN count conventional connections (k*k*C_in*H_out*W_out*C_out, padding taps "
                    "included; the SNN's at its measured rate per connection)",
}
#: Said of a summary written before the convention was recorded (the ANN then counted padding taps, the SNN not).
CONNECTIONS_UNRECORDED = "connection convention not recorded (older run: the ANN counted padding taps, the SNN did not)"
FIRST_LAYER_RULES = {
    "mac_per_timestep": "the first layer costs MACs at every timestep (on spike input: densely, as the analog image)",
    "mac_once": "the first layer costs MACs once per inference (input held over T; on spike input: densely)",
    "ac_with_input_rate": "the first layer costs ACs: its recorded input spikes x fan-out (FLOPs_1 x R_0)",
}


def comparison_caption(summary: pd.DataFrame) -> list[str]:
    """What the figures of ``summary`` are measured against: the baseline model and the hardware
    it runs on per config, the counting rules, the first-layer convention, and which way round
    the ratios are. Printed above every table and used in plot titles."""
    if summary.empty:
        return []

    def uniq(col: str) -> list[str]:
        return [str(v) for v in dict.fromkeys(summary[col])] if col in summary else []

    hw_text = ""
    if {"hw", "baseline_hw"} <= set(summary):
        own: list[str] = []
        other: dict[str, list[str]] = {}
        for hw, base in summary[["hw", "baseline_hw"]].drop_duplicates().itertuples(index=False):
            if str(hw).split(" (")[0] == str(base).split(" (")[0]:
                own.append(str(hw))
            else:
                other.setdefault(str(base), []).append(str(hw))
        parts = ([f"on the same config ({', '.join(own)})"] if own else [])
        parts += [f"on {base} (for {', '.join(hws)})" for base, hws in other.items()]
        hw_text = "; ".join(parts)
    lines = [f"baseline: the non-spiking ANN {' / '.join(uniq('baseline_model'))}, {hw_text}".rstrip(", ")]
    rules = [COUNTING_RULES.get(c, c) for c in uniq("counting")]
    conns = list(dict.fromkeys(CONNECTION_RULES.get(c, CONNECTIONS_UNRECORDED if c == "nan" else c)
                               for c in uniq("connections"))) or [CONNECTIONS_UNRECORDED]
    first = [FIRST_LAYER_RULES.get(c, c) for c in uniq("first_layer")]
    zero = ["zero weights skipped" if v in ("True", "1") else "ops on zero weights counted" for v in uniq("skip_zero_weights")]
    lines.append("counting: " + "; ".join(rules + conns + first + zero))
    if {"hw", "analog_runs_on"} <= set(summary):
        moved: dict[str, list[str]] = {}
        for hw, where in summary[["hw", "analog_runs_on"]].drop_duplicates().itertuples(index=False):
            if str(where) not in ("-", "nan") and str(where) != str(hw).split(" (")[0]:
                moved.setdefault(str(where), []).append(str(hw))
        for where, hws in moved.items():
            lines.append(f"no MAC datapath on {', '.join(hws)}: the analog first layer runs on {where}, "
                         f"charged and timed there (layers.csv runs_on)")
    lines.append("ANN/SNN = E_ANN / E_SNN per inference (> 1: the SNN uses less energy); "
                 "compute-only = the same for MAC/AC energy alone")
    return lines


def format_ratio(v: float) -> str:
    """A ratio to 3 significant figures with an 'x' (0.00467x, 1.99x, 12.6x, 123x)."""
    if pd.isna(v):
        return "-"
    return f"{v:.3g}x" if abs(v) < 1000 else f"{v:,.0f}x"
