"""What `ariel simulate --profile` shows: per layer and per inference, exact instructions,
estimated cycles (with the board's flash model where it has one, beside the RAM-speed
cycles and the share lost to flash), cycles per MAC, share of the total, estimated time at
the board's clock and energy; as a table, as JSON, and as an HTML page with a bar chart."""

from __future__ import annotations

import html

from codegen.run.profiling import ProfileReport

OP_COLOURS = {"Conv": "#4e79a7", "Gemm": "#f28e2b", "MatMul": "#f28e2b", "Add": "#59a14f",
              "AveragePool": "#76b7b2", "GlobalAveragePool": "#76b7b2", "MaxPool": "#76b7b2",
              "Softmax": "#edc948", "QuantizeLinear": "#b07aa1",
              "DequantizeLinear": "#b07aa1", "ariel.Relayout": "#9c755f"}
OTHER_COLOUR = "#bab0ac"


def _share(value: float, total: float) -> str:
    return f"{100 * value / total:5.1f}%" if total else "     -"


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def format_table(report: ProfileReport, name_width: int = 34) -> str:
    estimated = report.total_cycles is not None
    lines = [f"Profile of {report.model} ({report.precision}) on {report.board} "
             f"({report.core}, {report.clock_hz / 1e6:g} MHz), {report.inferences} "
             f"inference(s): instructions are exact (QEMU); cycles, time and energy are "
             f"estimates"]
    header = (f"  {'#':>3}  {'op':<18}{'node':<{name_width}}{'MACs':>12}{'instructions':>14}"
              f"{'instr/MAC':>10}")
    flash = estimated and report.flash_model
    if estimated:
        header += f"{'cycles':>14}{'cyc/MAC':>9}{'share':>7}"
        if flash:
            header += f"{'RAM-speed':>14}{'flash':>7}"
        header += f"{'time us':>10}{'energy uJ':>11}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    total = report.total_cycles if estimated else report.total_instructions
    for row in report.layers:
        name = row.name if len(row.name) < name_width else "…" + row.name[-(name_width - 2):]
        text = (f"  {row.index:>3}  {row.op:<18}{name:<{name_width}}{row.macs:>12,}"
                f"{row.instructions:>14,.0f}{_number(row.instructions_per_mac, 2):>10}")
        if estimated:
            text += (f"{_number(row.cycles):>14}{_number(row.cycles_per_mac, 2):>9}"
                     f"{_share(row.cycles or 0, total):>7}")
            if flash:
                text += (f"{_number(row.ram_cycles):>14}"
                         f"{_share(row.flash_cycles or 0, row.cycles or 0):>7}")
            text += f"{_number(row.time_us, 1):>10}{_number(row.energy_uj, 2):>11}"
        lines.append(text)
    lines.append("  " + "-" * (len(header) - 2))
    per_mac = report.total_instructions / report.total_macs if report.total_macs else None
    lines.append(f"  per inference: {report.total_instructions:,.0f} instructions "
                 f"({_number(per_mac, 2)} per MAC, {report.total_macs:,} MACs), of which "
                 f"{report.between_layers:,.0f} in the run function between kernels")
    if len(set(report.per_inference_instructions)) > 1:
        lines.append(f"  instructions vary by input: {min(report.per_inference_instructions):,}"
                     f"..{max(report.per_inference_instructions):,}")
    if estimated:
        which = " with the board's flash model" if flash else ""
        lines.append(f"  estimated{which}: {report.total_cycles:,.0f} cycles, "
                     f"{report.time_ms:.3f} ms at {report.clock_hz / 1e6:g} MHz"
                     + (f", {report.energy_uj:,.1f} uJ" if report.energy_uj is not None
                        else ", no energy (the board file has no power figures)"))
    if flash:
        lost = report.total_cycles - report.total_ram_cycles
        lines.append(f"  at RAM speed: {report.total_ram_cycles:,.0f} cycles "
                     f"({report.total_ram_cycles / report.clock_hz * 1e3:.3f} ms); the flash "
                     f"costs {lost:,.0f} cycles ({_share(lost, report.total_cycles).strip()} of "
                     "the estimate)")
        lines.append("  " + weights_in_ram_line(report))
    memory = f"  memory: arena {report.arena_bytes:,} B"
    if report.stack_bytes is not None:
        memory += f", stack high-water {report.stack_bytes:,} B"
        if report.stack_reserved:
            memory += f" of {report.stack_reserved:,} B reserved"
    lines.append(memory)
    if report.assumptions:
        lines.append("  assumptions:")
        lines += [f"    - {text}" for text in report.assumptions]
    return "\n".join(lines)


def weights_in_ram_line(report: ProfileReport) -> str:
    """What copying the hottest layers' flash constants to RAM at start-up would save."""
    free = report.ram_free_bytes
    if free is None:
        return "weights in RAM: unknown (the profiling ELF was not found to size the RAM)"
    if not report.weights_in_ram:
        return (f"weights in RAM: no layer's flash constants fit the {free:,} B of RAM left, "
                "or none waits on flash")
    chosen = set(report.weights_in_ram)
    used = sum(row.flash_data_bytes or 0 for row in report.layers if row.index in chosen)
    saving = report.weights_in_ram_saving
    return (f"weights in RAM: copying the constants of layer(s) "
            f"{', '.join(map(str, report.weights_in_ram))} ({used:,.0f} B of the {free:,} B "
            f"of RAM left) would save {saving:,.0f} cycles "
            f"({saving / report.clock_hz * 1e3:.3f} ms) per inference")


def format_html(report: ProfileReport) -> str:
    """A self-contained page: summary, a bar chart of each layer's cycles (or instructions),
    the table, and the assumptions behind the estimates."""
    measure = "cycles" if report.total_cycles is not None else "instructions"
    values = [(row.cycles if measure == "cycles" else row.instructions) or 0
              for row in report.layers]
    largest = max(values, default=1) or 1
    bar_height, label_width, chart_width = 22, 260, 560
    bars = []
    for position, (row, value) in enumerate(zip(report.layers, values, strict=True)):
        y = position * bar_height
        width = chart_width * value / largest
        colour = OP_COLOURS.get(row.op, OTHER_COLOUR)
        title = html.escape(f"{row.name}: {value:,.0f} {measure}, {row.macs:,} MACs")
        bars.append(
            f'<g><title>{title}</title>'
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">'
            f'{row.index} {html.escape(row.op)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{width:.1f}" height="{bar_height - 6}"'
            f' fill="{colour}"/>'
            f'<text x="{label_width + width + 6:.1f}" y="{y + 15}">{value:,.0f}</text></g>')
    height = bar_height * len(values) + 10
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + chart_width + 120}" '
           f'height="{height}" font-family="sans-serif" font-size="12">{"".join(bars)}</svg>')
    summary = html.escape(format_table(report).split("\n", 1)[0])
    table = html.escape(format_table(report))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>ariel profile: {html.escape(report.model)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "pre{font-size:12px;background:#f6f6f6;padding:1em;overflow-x:auto}</style></head>"
        f"<body><h1>{html.escape(report.model)} on {html.escape(report.board)}</h1>"
        f"<p>{summary}</p><h2>{measure.capitalize()} per layer</h2>{svg}"
        f"<h2>Table</h2><pre>{table}</pre></body></html>\n")


def format_comparison(renode: ProfileReport, qemu: ProfileReport, differences: list[str],
                      firmware_cycles: list[int], name_width: int = 34) -> str:
    """Renode's instruction counts per layer beside QEMU's for the same code, with the
    cycles, time and energy the Renode rows are given (`differences`: the layers on which
    the counts differ, empty when they agree; `firmware_cycles`: the firmware's own count
    around each inference in Renode)."""
    lines = [f"Profile of {renode.model} ({renode.precision}) on {renode.board} "
             f"({renode.core}, {renode.clock_hz / 1e6:g} MHz), the --io uart build, "
             f"{renode.inferences} inference(s): instructions counted by Renode and by QEMU "
             f"on the same code (exact); cycles, time and energy are estimates"]
    header = (f"  {'#':>3}  {'op':<18}{'node':<{name_width}}{'MACs':>12}{'Renode instr':>14}"
              f"{'QEMU instr':>14}{'cycles':>14}{'share':>7}{'time us':>10}{'energy uJ':>11}")
    lines += [header, "  " + "-" * (len(header) - 2)]
    for row, twin in zip(renode.layers, qemu.layers, strict=True):
        name = row.name if len(row.name) < name_width else "…" + row.name[-(name_width - 2):]
        lines.append(f"  {row.index:>3}  {row.op:<18}{name:<{name_width}}{row.macs:>12,}"
                     f"{row.instructions:>14,.0f}{twin.instructions:>14,.0f}"
                     f"{_number(row.cycles):>14}{_share(row.cycles or 0, renode.total_cycles):>7}"
                     f"{_number(row.time_us, 1):>10}{_number(row.energy_uj, 2):>11}")
    lines.append("  " + "-" * (len(header) - 2))
    lines.append(f"  per inference: Renode {renode.total_instructions:,.0f} instructions, QEMU "
                 f"{qemu.total_instructions:,.0f}; between kernels Renode "
                 f"{renode.between_layers:,.0f}, QEMU {qemu.between_layers:,.0f}")
    lines.append("  Renode and QEMU agree on every layer" if not differences else
                 "  Renode and QEMU differ: " + "; ".join(differences))
    if firmware_cycles:
        lines.append("  the firmware's own cycle count in Renode (one instruction per cycle): "
                     + ", ".join(f"{c:,}" for c in firmware_cycles))
    lines.append(f"  estimated: {renode.total_cycles:,.0f} cycles, {renode.time_ms:.3f} ms at "
                 f"{renode.clock_hz / 1e6:g} MHz"
                 + (f", {renode.energy_uj:,.1f} uJ" if renode.energy_uj is not None
                    else ", no energy (the board file has no power figures)"))
    lines.append("  assumptions:")
    lines += [f"    - {text}" for text in renode.assumptions]
    return "\n".join(lines)
