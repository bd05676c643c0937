"""What `ariel simulate --power-cuts/--cut-at/--cut-every` and `--harvest` print and write:
the summaries, their JSON, and the harvest's page with its plot."""

from __future__ import annotations

import html
import math

from codegen.run.harvest import on_period_cycles
from codegen.run.harvested import HarvestedRun
from codegen.run.power_cuts import NVM_WRITE, CutRun


def cut_summary(run: CutRun, board: str) -> str:
    reference = run.uninterrupted
    lines = [f"power cuts on {board} (unicorn machine): {run.schedule}",
             f"  uninterrupted run: {reference.instructions:,} instructions"]
    made = len(run.cuts)
    if run.completed:
        ratio = run.instructions / reference.instructions
        lines.append(f"  finished after {run.power_cycles:,} power cycle(s) ({made:,} cut(s)): "
                     f"{run.instructions:,} instructions in all, {ratio:.2f}x the "
                     "uninterrupted run")
    else:
        lines.append(f"  did not finish: {run.power_cycles:,} power cycle(s), {made:,} cut(s), "
                     f"{run.instructions:,} instructions in all")
    if run.has_nvm_write:
        lines.append(f"  cuts inside {NVM_WRITE} (torn writes): {run.torn_writes:,} of {made:,}; "
                     f"{run.nvm_bytes:,} B stored into the NVM")
    if run.completed:
        lines.append("  outputs: " + ("equal to the uninterrupted run's, bit for bit"
                                      if run.equal else "DIFFERENT from the uninterrupted run's"))
    return "\n".join(lines)


def cut_json(run: CutRun) -> dict:
    return {"schedule": run.schedule,
            "uninterrupted_instructions": run.uninterrupted.instructions,
            "completed": run.completed, "stuck": run.stuck,
            "outputs_equal": run.equal if run.completed else None,
            "power_cycles": run.power_cycles, "instructions": run.instructions,
            "nvm_bytes_stored": run.nvm_bytes, "torn_writes": run.torn_writes,
            "cuts": [{"cycle": c.cycle, "after": c.after, "pc": c.pc, "function": c.function,
                      "in_nvm_write": c.in_nvm_write} for c in run.cuts]}


def harvest_summary(run: HarvestedRun, board: str, cpi_source: str) -> str:
    cap, load, harvest = run.capacitor, run.load, run.harvest
    reference = run.uninterrupted
    lines = [f"harvesting on {board} (unicorn machine): {harvest.description} into "
             f"{cap.farads * 1e6:g} uF, on at {cap.turn_on_v:g} V, off at {cap.brown_out_v:g} V",
             f"  board: {load.run_w * 1e3:g} mW running at {load.clock_hz / 1e6:g} MHz, "
             f"{load.cycles_per_instruction:.3f} cycles per instruction ({cpi_source}), "
             f"{load.sleep_w * 1e3:g} mW while charging"]
    if harvest.period == 0:
        cycles = on_period_cycles(cap, harvest.powers[0], load)
        lines.append("  on-period (turn-on to brown-out, no NVM writes): "
                     + ("unlimited: the harvest covers the run power" if math.isinf(cycles)
                        else f"{cycles:,.0f} cycles ({cycles / load.clock_hz * 1e3:.3g} ms)"))
    state = (f"finished: time to result {run.seconds * 1e3:,.3f} ms" if run.completed
             else f"did not finish ({run.seconds * 1e3:,.3f} ms emulated)")
    lines.append(f"  {state}, {run.power_cycles:,} power cycle(s), powered "
                 f"{run.on_seconds * 1e3:,.3f} ms")
    extra = run.instructions / reference.instructions - 1 if reference.instructions else 0
    lines.append(f"  instructions: {run.instructions:,} in all, {reference.instructions:,} "
                 "uninterrupted" + (f" ({extra:+.1%}: re-execution and restarts)"
                                    if run.completed else ""))
    lines.append(f"  energy used: {run.run_joules * 1e3:,.4f} mJ; on checkpoints (NVM writes, "
                 f"{run.nvm_bytes:,} B) {run.checkpoint_joules * 1e3:,.4f} mJ"
                 + (f"; on re-execution {run.reexecution_joules * 1e3:,.4f} mJ"
                    if run.completed else ""))
    if run.completed:
        lines.append("  outputs: " + ("equal to the uninterrupted run's, bit for bit"
                                      if run.equal else "DIFFERENT from the uninterrupted run's"))
    return "\n".join(lines)


def harvest_json(run: HarvestedRun) -> dict:
    cap, load = run.capacitor, run.load
    return {"harvest": run.harvest.description, "mean_harvest_w": run.harvest.mean,
            "capacitor": {"farads": cap.farads, "turn_on_v": cap.turn_on_v,
                          "brown_out_v": cap.brown_out_v},
            "load": {"run_w": load.run_w, "clock_hz": load.clock_hz, "sleep_w": load.sleep_w,
                     "cycles_per_instruction": load.cycles_per_instruction},
            "completed": run.completed, "stuck": run.stuck,
            "outputs_equal": run.equal if run.completed else None,
            "time_to_result_s": run.seconds if run.completed else None,
            "emulated_s": run.seconds, "powered_s": run.on_seconds,
            "power_cycles": run.power_cycles, "instructions": run.instructions,
            "uninterrupted_instructions": run.uninterrupted.instructions,
            "energy_j": run.run_joules, "checkpoint_energy_j": run.checkpoint_joules,
            "reexecution_energy_j": run.reexecution_joules if run.completed else None,
            "nvm_bytes_stored": run.nvm_bytes}


def harvest_html(run: HarvestedRun, title: str, summary: str) -> str:
    """A self-contained page: the capacitor's voltage over time (at each turn-on and
    brown-out, straight lines between) above the work done (instructions executed, as a
    share of an uninterrupted run's) and the firmware's committed progress."""
    samples = run.samples
    end = max(samples[-1].seconds, 1e-12)
    width, height, left, gap = 900, 180, 60, 50
    top_volts = run.capacitor.turn_on_v * 1.1
    most = max(max(s.instructions for s in samples) / max(run.uninterrupted.instructions, 1),
               1.0)

    def x(seconds: float) -> float:
        return left + width * seconds / end

    def panel(offset: float, points: list[tuple[float, float]], colour: str,
              step: bool = False) -> str:
        path = []
        for index, (px, py) in enumerate(points):
            if step and index:
                path.append(f"{px:.1f},{points[index - 1][1]:.1f}")
            path.append(f"{px:.1f},{py:.1f}")
        return (f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                f'points="{" ".join(path)}" transform="translate(0,{offset})"/>')

    volts = [(x(s.seconds), height * (1 - s.volts / top_volts)) for s in samples]
    work = [(x(s.seconds), height * (1 - s.instructions / run.uninterrupted.instructions
                                     / most)) for s in samples]
    committed = [(x(s.seconds), height * (1 - s.progress / most)) for s in samples]
    lower = height + gap
    axes = "".join(
        f'<line x1="{left}" y1="{offset + height}" x2="{left + width}" y2="{offset + height}" '
        f'stroke="#888"/><line x1="{left}" y1="{offset}" x2="{left}" y2="{offset + height}" '
        f'stroke="#888"/><text x="{left - 6}" y="{offset + 12}" text-anchor="end">{label}'
        f'</text><text x="{left - 6}" y="{offset + height}" text-anchor="end">0</text>'
        for offset, label in ((0, f"{top_volts:.2g} V"), (lower, f"{most:.2g}x")))
    brown = height * (1 - run.capacitor.brown_out_v / top_volts)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
           f'height="{2 * height + gap + 40}" font-family="sans-serif" font-size="12">'
           f'{axes}<line x1="{left}" y1="{brown:.1f}" x2="{left + width}" y2="{brown:.1f}" '
           f'stroke="#d62728" stroke-dasharray="4 3"/>'
           f'{panel(0, volts, "#1f77b4")}{panel(lower, work, "#ff7f0e")}'
           f'{panel(lower, committed, "#2ca02c", step=True)}'
           f'<text x="{left + width}" y="{2 * height + gap + 30}" text-anchor="end">'
           f'{end * 1e3:,.3f} ms</text><text x="{left}" y="{2 * height + gap + 30}">0 ms</text>'
           "</svg>")
    legend = ("Top: the capacitor's voltage at each turn-on and brown-out (blue; the dashed red "
              "line is the brown-out voltage). Bottom: instructions executed in all, as a "
              "multiple of an uninterrupted run's (orange), and the share of the work the "
              "firmware had committed to NVM when it last powered up (green; from its "
              "\"resumed at\" line).")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>ariel harvest: {html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
            "pre{font-size:12px;background:#f6f6f6;padding:1em;overflow-x:auto}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><pre>{html.escape(summary)}</pre>"
            f"{svg}<p>{html.escape(legend)}</p></body></html>\n")
