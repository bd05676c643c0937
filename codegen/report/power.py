"""What `ariel simulate --power-cuts/--cut-at/--cut-every` prints and writes."""

from __future__ import annotations

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
