"""ONNX Conv, 1-D and 2-D, any group count (so depthwise too), float32 and int8. Works
channels-last: input NHWC, output NHWC, constant filters re-laid at compile time (OHWI, then
packed in the order the kernels read them: see pack_pairs and pack_blocks in gemm.py).

Each output pixel's taps are an inner product with each filter: float32 four pixels by four
filters per step (a filter three wide at stride 1 along the row: four neighbouring pixels of a
row, which share their input columns, see shares_columns), int8 two by two on the DSP
extension (two MACs per SMLAD) or in plain C elsewhere; depthwise convolutions of a multiple
of four channels have a kernel of their own. The int8 kernels follow codegen/compiler/quant
and share their checks, zero-point folding and output stage with gemm.py."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from codegen.compiler.c import c_literal
from codegen.compiler.ir import Graph, Node, Tensor, channels_last
from codegen.compiler.ops.base import (
    FLOAT_TYPES,
    Kernel,
    Names,
    OpDef,
    apply_clamp,
    attr,
    clamp_statements,
    describe_clamp,
    is_quantized,
    param_of,
    register,
    require_dtype,
    unsupported,
)
from codegen.compiler.ops.common_shift import common_shift
from codegen.compiler.ops.constant_channels import skipped_channels
from codegen.compiler.ops.conv_pairs import (
    ICACHE_BYTES,
    MOST_CHANNELS,
    MOST_WORDS,
    BufferLayout,
    PairedTaps,
    buffer_runs,
    buffer_width,
    flash_order,
    four_filters,
    load_steps,
    one_row_layout,
    pair_taps,
    slot_runs,
    sxtb16_call,
    two_row_layout,
)
from codegen.compiler.ops.depthwise_rows import describe as describe_rows
from codegen.compiler.ops.depthwise_rows import oriented, pack_rows_filters, rows_path
from codegen.compiler.ops.filter_steps import MOST_STAGE_WORDS, pair_steps
from codegen.compiler.ops.inner_product import (
    SCRATCH_BUDGET,
    Folding,
    accumulator_bound,
    bias_reader,
    check_bound,
    check_s8_product,
    describe_quant,
    fold_zero_point,
    pack_blocks,
    pack_pairs,
    product_stage,
    requantizer,
    wrap_notes,
)
from codegen.compiler.ops.quantize import c_add
from codegen.compiler.ops.spatial import OutputGrid, Window, output_spatial, window
from codegen.compiler.quant.output_stage import OutputStage, zero_point_of


@register("Conv")
class Conv(OpDef):
    limits = "3-D and higher convolutions"
    attributes = frozenset({"auto_pad", "dilations", "group", "kernel_shape", "pads",
                            "strides"})
    accepts_clamp = True
    int8 = True

    def check(self, node: Node, graph: Graph) -> None:
        super().check(node, graph)
        x, w, *rest = graph.input_tensors(node)
        quantized = is_quantized(graph, node)
        if not quantized:
            for tensor in (x, w, *rest):
                require_dtype(node, tensor, FLOAT_TYPES)
        if x.rank not in (3, 4):
            raise unsupported(node, f"{x.rank - 2}-D convolution", "1-D and 2-D")
        group = attr(node, "group", 1)
        if x.shape[1] % group or w.shape[0] % group or w.shape[1] * group != x.shape[1]:
            raise unsupported(node, f"group {group} with {x.shape[1]} input channels and "
                              f"weights {list(w.shape)}", "groups that divide the channels")
        if quantized:
            if not w.is_const:
                raise unsupported(node, "int8 filters computed at run time",
                                  "constant int8 filters")
            check_s8_product(node, graph, x, w, rest[0] if rest else None, 0)
            check_bound(node, self.accumulator_bound(node, graph))

    def room(self, node: Node, graph: Graph) -> tuple[int, int, int] | None:
        """RAM for the filters: int8 widened, a pair of filters per unit; float, four
        (filters_in_ram)."""
        return filters_in_ram(node, graph)

    def accumulator_bound(self, node: Node, graph: Graph) -> int:
        """Bound of the int32 accumulator (padded taps only make it smaller)."""
        x, w, *rest = graph.input_tensors(node)
        return accumulator_bound(x, w, rest[0] if rest else None, tuple(range(1, w.rank)))

    def geometry(self, node: Node, x: Tensor | np.ndarray, w: Tensor | np.ndarray) -> Window:
        return window(node, tuple(x.shape[2:]), tuple(attr(node, "kernel_shape", w.shape[2:])))

    def infer(self, node: Node, inputs: list[Tensor | None]):
        x, w = inputs[0], inputs[1]
        win = self.geometry(node, x, w)
        return [((x.shape[0], w.shape[0], *output_spatial(win, x.rank - 2)), x.dtype)]

    def reference(self, node: Node, x, w, b=None):
        y = self.correlate(node, x.astype(np.float64), w.astype(np.float64))
        if b is not None:
            y += b.astype(np.float64).reshape(1, -1, *[1] * (x.ndim - 2))
        return [apply_clamp(node, y.astype(np.float32))]

    def reference_s8(self, node: Node, graph: Graph, x, w, b=None):
        """Exact in int64: x minus its zero point, padded with zeros (a padded tap is a real
        zero, as the kernel's skipped taps are), then the output stage per channel."""
        x_tensor, w_tensor = graph.input_tensors(node)[:2]
        acc = self.correlate(node, x.astype(np.int64) - zero_point_of(x_tensor),
                             w.astype(np.int64))
        if b is not None:
            acc += b.astype(np.int64).reshape(1, -1, *[1] * (x.ndim - 2))
        return [product_stage(graph, node, x_tensor, w_tensor).apply(acc, 1)]

    def correlate(self, node: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """sum over the window of x * w, in the arrays' own type (float64 or int64), with
        zeros for padding; (N, C, spatial...) out."""
        win = self.geometry(node, x, w)
        group = attr(node, "group", 1)
        x4, w4 = _as_2d(x), _as_2d(w)
        t, lft, bot, r = win.pads
        xp = np.pad(x4, ((0, 0), (0, 0), (t, bot), (lft, r)))
        n = x4.shape[0]
        oc, icg, kh, kw = w4.shape
        oh, ow = win.out_hw
        (sh, sw), (dh, dw) = win.strides, win.dilations
        ocg = oc // group
        # Every group at once (a depthwise layer has one per channel): x as (n, g, c, h, w),
        # the filters as (g, o, c, kh, kw).
        xg = xp.reshape(n, group, icg, *xp.shape[2:])
        wg = w4.reshape(group, ocg, icg, kh, kw)
        y = np.zeros((n, group, ocg, oh, ow), x.dtype)
        for ky in range(kh):
            for kx in range(kw):
                patch = xg[..., ky * dh:ky * dh + sh * (oh - 1) + 1:sh,
                           kx * dw:kx * dw + sw * (ow - 1) + 1:sw]
                y += np.einsum("ngchw,goc->ngohw", patch, wg[..., ky, kx])
        y = y.reshape(n, oc, oh, ow)
        return y.reshape((n, oc, *output_spatial(win, x.ndim - 2)))

    def layout(self, node: Node, graph: Graph):
        x = graph.tensor(node.inputs[0])
        return [channels_last(x.rank)] + [None] * (len(node.inputs) - 1), [channels_last(x.rank)]

    def lower(self, node: Node, graph: Graph, names: Names, grid: OutputGrid | None = None
              ) -> Kernel:
        """`grid`: where the output pixels go (by default the output, row-major; a
        ConvTranspose phase passes its strided share of a larger output)."""
        if is_quantized(graph, node):
            return self.lower_s8(node, graph, names, grid)
        x, w, *rest = graph.input_tensors(node)
        win = self.geometry(node, x, w)
        geometry = self.geometry_context(node, x, w, grid)
        bias = rest[0] if rest and rest[0] is not None else None
        weights = {}
        if bias is not None and bias.is_const:
            weights["b"] = bias.data.astype(np.float32)
        bias_name = (None if bias is None else
                     names.weight("b") if bias.is_const else param_of(node, graph, bias.name))
        clamp = clamp_statements("v", node.clamp, "float")
        if not w.is_const:
            return self.lower_runtime_filters(node, graph, names, weights, bias_name)
        rows = _ohwi(w.data).reshape(w.shape[0], -1).astype(np.float32)
        taps = geometry["kh"] * geometry["kw"]
        context = {**geometry, "taps": taps, "b": bias_name, "clamp": clamp,
                   "padded": reads_padding(win),
                   "geometry": win.describe() + describe_clamp(node.clamp)}
        if geometry["icg"] == 1 and geometry["ocg"] == 1 and geometry["ic"] % 4 == 0:
            weights["w"] = np.ascontiguousarray(
                rows.reshape(-1, 4, taps).transpose(0, 2, 1)).reshape(-1)
            row3 = grid is None and shares_columns(win, 1, 3, (1, 2))
            return Kernel("kernels/conv_dw_f32.c.j2",
                          {**context, "pixels": win.out_hw[0] * win.out_hw[1], "row3": row3,
                           "slots": 2 * win.strides[1] + 3,
                           "chunk": depthwise_chunk(geometry["ic"], taps) if row3 else 0,
                           **assembly_clamp(node.clamp)},
                          weights, multiplicand="w")
        ocg = geometry["ocg"]
        row3 = grid is None and shares_columns(win, geometry["group"], 4, (1,))
        if row3:
            # The kernel walks each filter row channel by channel, its three taps innermost.
            rows = np.ascontiguousarray(rows.reshape(
                w.shape[0], geometry["kh"], 3, geometry["icg"]).transpose(0, 1, 3, 2)
            ).reshape(w.shape[0], -1)
        weights["w"] = np.concatenate([pack_blocks(rows[g * ocg:(g + 1) * ocg])
                                       for g in range(geometry["group"])])
        # On the stack beside the filters: four pixels' tap pointers and the row of zeros.
        copied, on_stack = filter_blocks(node, graph, 16 * taps + 4 * geometry["ic"], grid)
        context.update(k=taps * geometry["icg"], pixels=win.out_hw[0] * win.out_hw[1],
                       quads=ocg // 4, copied=copied, on_stack=on_stack, room=node.room > 0,
                       row3=row3, slots=6)
        return Kernel("kernels/conv_f32.c.j2", context, weights, multiplicand="w")

    def lower_runtime_filters(self, node: Node, graph: Graph, names: Names,
                              weights: dict[str, np.ndarray], bias_name: str | None) -> Kernel:
        """Filters computed at run time are read where they lie (OIHW, or OIW for 1-D)."""
        x, w = graph.input_tensors(node)[:2]
        win = self.geometry(node, x, w)
        w_strides = _filter_strides(w)
        context = {
            **self.geometry_context(node, x, w),
            "w": param_of(node, graph, w.name), "b": bias_name,
            "w_stride_o": w_strides[0], "w_stride_h": w_strides[1],
            "w_stride_w": w_strides[2], "w_stride_i": w_strides[3],
            "geometry": win.describe() + describe_clamp(node.clamp),
            "clamp": clamp_statements("acc", node.clamp, "float"),
        }
        return Kernel("kernels/conv_f32_runtime.c.j2", context, weights)

    def lower_s8(self, node: Node, graph: Graph, names: Names, grid: OutputGrid | None = None
                 ) -> Kernel:
        """The int8 kernel: constant filters re-laid for the path that reads them, int32 bias
        with the input zero point folded in where it can be, the output stage per channel.
        Depthwise convolutions of four channels at a time get a kernel of their own; every
        other shape is an inner product per output pixel over its gathered receptive field,
        unless that field is too large for the stack."""
        x, w, *rest = graph.input_tensors(node)
        bias = rest[0].data if rest else None
        out = graph.tensor(node.outputs[0])
        win = self.geometry(node, x, w)
        geometry = self.geometry_context(node, x, w, grid)
        stage = product_stage(graph, node, x, w)
        zero_point = zero_point_of(x)
        rows = _ohwi(w.data).reshape(w.shape[0], -1)
        folding = fold_zero_point(rows, bias, zero_point)
        depthwise = geometry["icg"] == 1 and geometry["ocg"] == 1 and geometry["ic"] % 4 == 0
        plan = None if depthwise else paired_plan(node, graph, grid)
        # Output channels that are one value whatever the input are not computed, in the
        # kernels that write whole pixels' rows of channels (conv_s8, conv_direct_s8).
        skipped = (skipped_channels(stage, rows, folding)
                   if not depthwise and plan is None and grid is None
                   and geometry["group"] == 1 else None)
        if skipped is not None:
            stage, rows, folding = skipped.slice(stage, rows, bias, zero_point)
            geometry = {**geometry, "oc": skipped.live.size, "ocg": skipped.live.size}
        requant = requantizer(stage, names)
        weights = dict(requant.weights)
        notes = [f"x {describe_quant(x)}; {folding.note}",
                 f"w {describe_quant(w)}",
                 f"y {describe_quant(out)}, clamped to [{stage.low}, {stage.high}]; "
                 f"{requant.note}",
                 f"int32 accumulator, |acc| <= {self.accumulator_bound(node, graph)} "
                 f"(checked at compile time)",
                 win.describe()]
        spread, skipped_macs = None, 0
        if skipped is not None:
            skipped_macs = skipped.skipped_macs(self.macs(node, graph))
            notes.insert(3, skipped.note())
            tables, spread = skipped.spreading(names)
            weights.update(tables)
        context = {**geometry, "notes": notes, "offset": folding.offset, "spread": spread,
                   "widened": folding.widened,
                   "zero_point": zero_point, "requantize": requant.call,
                   "start": bias_reader(folding, names, weights), "w": names.weight("w")}
        taps = geometry["kh"] * geometry["kw"]
        k = taps * geometry["icg"]
        if depthwise:
            common = common_shift(stage, rows, folding)
            if common is not None:
                # One shift for every channel: filters and bias scaled per channel.
                rows = rows.astype(np.int64) * common.scales[:, None]
                folding = replace(folding, bias=folding.bias * common.scales)
                requant = common.requantizer(stage, names)
                weights = dict(requant.weights)
                notes[2] = (f"y {describe_quant(out)}, clamped to [{stage.low}, {stage.high}]; "
                            f"{requant.note}")
                context.update(requantize=requant.call,
                               start=bias_reader(folding, names, weights))
            # The rows kernel walks the map by rows, or by columns where they are longer
            # (fewer, longer rows: less set-up per row, fewer lone last pixels).
            straight, turned = oriented(geometry, False), oriented(geometry, True)
            ways = ((turned, straight) if grid is None and turned["ow"] > straight["ow"]
                    else (straight,))
            rows_plan, way = next(((plan, g) for g in ways if (plan := rows_path(g))),
                                  (None, None))
            if rows_plan is not None:
                weights["w"] = pack_rows_filters(rows, geometry["kh"], way["transposed"],
                                                 way["sw"])
                line = "column, the filter transposed" if way["transposed"] else "row"
                words = ("(w0, w1) then (w1, w2)" if way["sw"] == 1 else
                         f"(w0, w1), then the {line}s' w2 two to a word")
                notes[1] += (f"; w as int16 pairs, per channel and filter {line}: {words}: "
                             f"{weights['w'].nbytes} bytes of flash, so that no weight is "
                             f"widened or packed at run time")
                notes.append(describe_rows(rows_plan, way))
                g = geometry
                header = (f"x [{g['n']},{g['ih']},{g['iw']},{g['ic']}] NHWC -> y [{g['n']},"
                          f"{g['oh']},{g['ow']},{g['oc']}] NHWC, one filter of {g['kh']}x"
                          f"{g['kw']} per channel")
                return Kernel("kernels/conv_dw_rows_s8.c.j2",
                              {**context, **way, **rows_plan, "header": header,
                               "notes": wrap_notes(notes)}, weights)
            weights["w"] = pack_depthwise(rows)
            notes[1] += (f"; w as int16 pairs, per four channels: each pair of taps (t, t + 1) "
                         f"one word per channel, an odd last tap two words (channels 0 and 2, "
                         f"1 and 3): {weights['w'].nbytes} bytes of flash, twice the int8 "
                         f"filters', so that no weight is widened at run time")
            rows_of_words = depthwise_context(win, geometry, folding.offset)
            copy = (f"into a copy of the whole input's four channels padded with the zero "
                    f"point ({4 * rows_of_words['width'] * rows_of_words['height']} B of "
                    f"stack, within {WHOLE_INPUT_BUDGET})" if rows_of_words["whole"] else
                    f"into a ring of {rows_of_words['slots']} rows of words padded with the "
                    f"zero point (the whole input would pass {WHOLE_INPUT_BUDGET} B of stack)")
            notes.append(
                "path: depthwise, four channels of one pixel per step, every tap unrolled, "
                "the four channels' weights read by every output pixel in turn "
                "(in the flash's data cache). Each input row's four channels are copied "
                f"once {copy}, so that every pixel, at the border or not, reads its taps at "
                "fixed offsets from one pointer per filter row (no tap addresses per pixel, "
                "no border path). "
                "DSP (ARIEL_DSP): two taps' input words packed by PKHBT/PKHTB so that SXTB16 "
                "widens one channel's two taps into one word, and SMLAD takes both products "
                "against the pre-widened weight pair (two MACs per instruction, no run-time "
                "weight widening); plain C: the same sums one product at a time.")
            return Kernel("kernels/conv_dw_s8.c.j2",
                          {**context, **rows_of_words, "notes": wrap_notes(notes)}, weights)
        if plan is not None:
            return self.lower_pairs(node, plan, context, notes, stage, folding, names)
        ocg = geometry["ocg"]
        groups = [pack_pairs(rows[g * ocg:(g + 1) * ocg]) for g in range(geometry["group"])]
        packed, k4 = np.concatenate([part for part, _ in groups]), groups[0][1]
        staged = geometry["icg"] % 4 != 0
        scratch = 4 * k4 + (k4 if staged else 0)
        if scratch > SCRATCH_BUDGET:
            # (the filters of the channels computed: `rows`, one OHWI filter a row)
            weights["w"] = rows.astype(np.int8).reshape(len(rows), *_ohwi(w.data).shape[1:])
            notes[1] += "; w OHWI"
            notes.append(f"path: plain C on every core, one output at a time: the DSP path "
                         f"would widen receptive fields of {k} values into {scratch} bytes of "
                         f"stack, over the {SCRATCH_BUDGET}-byte budget")
            return Kernel("kernels/conv_direct_s8.c.j2", {**context, "notes": wrap_notes(notes)},
                          weights, skipped_macs=skipped_macs)
        weights["w"] = packed
        notes[1] += (f"; w packed per group as filter pairs interleaved four weights at a "
                     f"time, each filter's {k} OHWI weights padded to {k4}")
        pixels = win.out_hw[0] * win.out_hw[1]
        block, on_stack = filter_blocks(node, graph, scratch, grid)
        quads = block > 0 and four_pixels(node, graph, k4, staged, pixels, (block, on_stack),
                                          grid)
        if quads:
            scratch += 4 * k4
        dsp_starts, dsp_requantize, dsp_stage = folding.bias, requant.call, requant.weights
        common = common_shift(stage, rows, folding) if block else None
        if common is not None:
            # The filters are widened at run time anyway: widened scaled, each channel's
            # accumulator needs the one shift, and the output stage is SMMLA and SSAT where
            # ariel_requantize_hi takes four instructions.
            dsp_starts = folding.bias * common.scales
            scaled = common.requantizer(stage, names, "rq_dsp")
            dsp_requantize, dsp_stage = scaled.call, scaled.weights
            weights["shifts_dsp"] = np.array([int(scale).bit_length() - 1
                                              for scale in common.scales], np.int8)
            notes[2] += (f"; on a DSP core output stage ariel_requantize_common: one shift "
                         f"({common.shift}) for every channel, each filter widened times "
                         f"2^shifts_dsp (up to 2^{int(weights['shifts_dsp'].max())}) and "
                         f"its bias scaled at compile time, rq_dsp: the multiplier per "
                         f"channel")
        steps = pair_steps(dsp_starts, dsp_stage, names) if block else None
        beside = 0
        if block:
            beside = steps_beside(node, geometry["oc"], block, on_stack, steps.unit(k4),
                                  k4, scratch)
            if beside:
                block = beside
            unit = steps.unit(k4) if beside else k4
            blocks = -(-geometry["oc"] // block)
            weights["steps_dsp"] = steps.table.reshape(-1)
            notes[1] += (f"; on a DSP core copied to RAM {block} filters at a time ("
                         + ("all at once" if blocks == 1 else f"{blocks} blocks, each "
                            f"receptive field widened once per block") +
                         f") and widened to int16 pairs in SXTB16's order, into "
                         f"{4 * -(-block // 2) * unit} bytes "
                         + ("of stack (the arena has no room at this step)" if on_stack else
                            "of room the arena has at this step (it does not grow for them)")
                         + ": every pair of output pixels reads all the filters again, and "
                         "flash reads wait. "
                         + ("Each pair of filters there lies between its two accumulator "
                            f"starts and its output-stage entries (steps_dsp: {2 + steps.stage}"
                            " words per pair, filter_steps.py), one pointer walking all that a "
                            "step reads" if beside else
                            "Each pair's accumulator starts and output-stage entries are read "
                            f"from steps_dsp ({2 + steps.stage} words per pair, "
                            "filter_steps.py) where it lies: beside the filters they would "
                            "take more blocks"))
        # The steps of four and three pixels store through ariel_store_4x2_common /
        # ariel_store_3x2_common (one asm statement for the step's outputs), their multipliers
        # read as the output stage reads them. Only where ariel_dot_4x2_s16_from reads the
        # starts (a short K loop): there it saved (VWW's 1x1 layers of 8 and 16 channels, 1.97
        # -> 1.84 and 1.49 -> 1.47 cycles per MAC); after the longer loops GCC moved registers
        # around it, and KWS's 1x1 layers (64 channels) went 1.29 -> 1.30, VWW's of 32 1.35 ->
        # 1.36 (bench/models.py, NUCLEO-L4R5ZI).
        common_store = None
        if common is not None and beside and starts_in_asm(k4 // 4):
            multiplier = steps.reading(common.multiplier(stage, names))
            common_store = {"m0": multiplier("0"), "m1": multiplier("1"),
                            "tail": f"{common.tail(stage)}, {geometry['oc']}"}
        in_place = (geometry["kh"] == geometry["kw"] == 1 and not any(win.pads)
                    and not staged)
        steps_of = pixel_steps(pixels, quads)
        left = ("; the pixels the fours leave: " + ", ".join(
            part for part in (f"{steps_of['threes']} step{'s' if steps_of['threes'] > 1 else ''}"
                              " of three" if steps_of["threes"] else "",
                              "two by two" if steps_of["pair_end"] > steps_of["pair_start"]
                              else "",
                              "one alone" if steps_of["lone"] else "") if part)
                if steps_of["quad_end"] < pixels else "")
        tile = ("four pixels' fields widened to int16 pairs on the stack "
                f"({scratch} bytes), then two filters by four pixels per step (each filter "
                "word loaded once for four pixels: 12 loads per 16 SMLAD, where two by two "
                "takes 8 per 8)" + left
                if quads else
                f"two pixels' fields widened to int16 pairs on the stack ({scratch} bytes), "
                "then two filters by two pixels per step")
        notes.append(
            "path: inner products over each output pixel's receptive field (K = "
            f"{k}). DSP (ARIEL_DSP): {tile}, two MACs per SMLAD; "
            + ("filters read as widened pairs, so the loop multiplies loaded words with no "
               "SXTB16; " if block else "") +
            "plain C: " + ("each pixel's input row read in place" if in_place else
                           "each pixel's field gathered as int8") +
            ", two filters per step. Padded taps read the zero point.")
        context.update(steps=names.weight("steps_dsp") if block else None,
                       unit=unit if block else 0, beside=bool(beside),
                       stage_words=steps.stage if block else 0,
                       dsp_requantize=steps.reading(dsp_requantize) if block else None,
                       stage_words_from=steps.declare if block else None,
                       starts_in_asm=starts_in_asm(k4 // 4), **steps_of,
                       common_store=common_store,
                       shifts=names.weight("shifts_dsp") if common is not None else None)
        context.update(block=block, on_stack=on_stack, k=k, k4=k4, staged=staged,
                       in_place=in_place, quads=quads, pixels=pixels,
                       pad16=zero_point + folding.offset, notes=wrap_notes(notes),
                       padded=reads_padding(win),
                       # A row of taps is one run of kw * icg values when they are neighbours.
                       row_runs=geometry["dw"] == 1 and geometry["group"] == 1)
        return Kernel("kernels/conv_s8.c.j2", context, weights, skipped_macs=skipped_macs)

    def lower_pairs(self, node: Node, plan: PairedPlan, context: dict, notes: list[str],
                    stage: OutputStage, folding: Folding, names: Names) -> Kernel:
        """The kernel for 1-3 input channels (conv_pairs.py): taps paired into row buffers
        built once per output row, filters widened into RAM once per inference. Widened,
        each filter can be scaled by a power of two so that every channel's accumulator
        takes one output-stage shift (common_shift.py), on every core."""
        g = context
        paired, width = plan.paired, plan.width
        weights: dict[str, np.ndarray] = {}
        requant = requantizer(stage, names)
        common = common_shift(stage, paired.weights.reshape(len(paired.weights), -1), folding)
        if common is not None:
            # SMMLA and SSAT per output where ariel_requantize_hi takes about 15 cycles:
            # about a third of a cycle per MAC of a 3x3 on three channels.
            notes[2] = notes[2].removesuffix(requant.note)
            folding = replace(folding, bias=folding.bias * common.scales)
            requant = common.requantizer(stage, names)
            notes[2] += requant.note
            weights["shifts"] = np.array([int(scale).bit_length() - 1
                                          for scale in common.scales], np.int8)
        weights.update(requant.weights)
        # The four-filter step's output stage in assembly (SMMLA, SSAT, STRB per output)
        # where it is the one shift and the full int8 range, with a table of multipliers:
        # after the step's assembly GCC reloads the table's pointer for each output.
        asm_stage = None
        if (common is not None and "rq" in requant.weights
                and (stage.low, stage.high) == (-128, 127) and 1 <= common.shift <= 31):
            asm_stage = {"add": common.add(stage), "shift": common.shift,
                         "table": names.weight("rq")}
        context.update(requantize=requant.call, start=bias_reader(folding, names, weights),
                       asm_stage=asm_stage,
                       shifts=names.weight("shifts") if common is not None else None)
        weights["w"] = flash_order(paired.weights)
        nwords = len(paired.words)
        filter_words = len(weights["w"]) // 2
        on_stack = node.room < -(-g["oc"] // 2)
        buffers = [{"describe": b.describe()} for b in paired.buffers]
        layout = plan.layout
        runs = []
        for run in slot_runs(buffer_runs(paired.buffers), layout.slots):
            b = paired.buffers[run.first]
            lo = min(g["pad_left"], width)
            hi = max(lo, min(width, g["iw"] + g["pad_left"] - b.shift))
            # Buffer run.first + k, k from 0 to run.count, its rows k * run.step further on.
            oy = f"oy * {g['sh']}" + (c_add(" + k", 0) if run.step * g["dh"] == 1 else
                                      f" + k * {run.step * g['dh']}") * (run.count > 1)
            runs.append({
                "describe": "; ".join(item["describe"] for item in
                                      buffers[run.first:run.first + run.count]),
                "count": run.count, "slot": layout.slots[run.first] * width,
                "slot_step": (layout.slots[run.first + 1] - layout.slots[run.first]) * width
                if run.count > 1 else 0,
                # The second row's first buffers of the shared run are the first row's last.
                "reused": run.first == layout.shared,
                "bottom_y": c_add(oy, b.rows[0] * g["dh"] - g["pad_top"]),
                "top_y": c_add(oy, b.rows[1] * g["dh"] - g["pad_top"]),
                "bottom_c": b.channels[0], "top_c": b.channels[1], "shift": b.shift,
                "bottom_x": c_add("j", -g["pad_left"]), "top_x": c_add("ix", b.shift),
                "bottom_j": c_add("j", -g["pad_left"]),
                "top_j": c_add("j", b.shift - g["pad_left"]),
                "lo": lo, "hi": hi,
                # Channels 0 and 2 of three by one word load and SXTB16, where the word's
                # fourth byte is still in the row.
                "words_hi": (min(hi, g["iw"] - 1 + g["pad_left"])
                             if b.channels == (0, 2) and b.rows[0] == b.rows[1] else lo),
                "edges": [(a, z) for a, z in ((0, lo), (hi, width)) if z > a]})
        notes[1] += (f"; w as {nwords} pairs of taps per filter (below), copied to "
                     + ("the stack" if on_stack else "the room the arena has at this step")
                     + f" and widened to int16 pairs once per inference ({4 * filter_words} "
                     "bytes)")
        kinds = "; ".join(f"buffer {k}: {b['describe']}" for k, b in enumerate(buffers))
        notes.append(
            f"path: taps paired across kernel positions ({g['ic']} input channel"
            f"{'s' if g['ic'] > 1 else ''}, too few for runs of four): each output row first "
            f"writes {len(buffers)} row buffer{'s' if len(buffers) > 1 else ''} of "
            f"{width} int16 pairs ({kinds}), then each pixel's {nwords} words lie at fixed "
            f"offsets from a pointer that moves {g['sw']} word{'s' if g['sw'] > 1 else ''} "
            "per pixel: no receptive field is gathered. Every word unrolled; DSP "
            "(ARIEL_DSP): one SMLAD per word and pixel and filter, "
            + ("two pixels by four filters per step (each pixel word loaded once for four "
               "filters: 6 loads per 8 SMLAD, where two by two take 4 per 4; the step's code "
               f"fits the {ICACHE_BYTES}-byte instruction cache), the filters the fours leave "
               "two and one at a time" if four_filters(g["oc"], nwords) else
               "two pixels by two filters per step"
               + (f" (four filters' step would pass the {ICACHE_BYTES}-byte instruction "
                  "cache)" if g["oc"] >= 4 else ""))
            + "; plain C: two pixels by two filters, two multiplies per word.")
        # On a DSP core the row buffers' loops write four words a step, their loads back to
        # back (pipelined: VWW's first layer 854,798 -> 802,744 estimated cycles, ResNet-8's
        # 650,688 -> 633,782, KWS's 526,231 -> 523,600). The plain path's loops are unrolled
        # where the buffers are a large share of the work, one word written for every 32 MACs
        # or fewer (VWW's 3x3, stride 2, 8 filters: one per 22); elsewhere the longer code
        # costs more in instruction fetches than the loops' counts and branches save.
        unroll_rows = 32 * len(buffers) * g["sw"] > nwords * 2 * g["oc"]
        notes[-1] += (" The row buffers' loops take four words a step on a DSP core, their "
                      "loads back to back" + ("; plain C: unrolled four times, as they write "
                                              "a word for every 32 MACs or fewer."
                                              if unroll_rows else "."))
        if plan.together == 2:
            notes[-1] += (" On a DSP core two output rows at a time: both rows' buffers, then "
                          "both rows' pixels, so that the code of each, which evict each other "
                          f"from a {ICACHE_BYTES}-byte instruction cache, runs twice in a row"
                          + (" (the last row alone)" if g["oh"] % 2 else "")
                          + (f"; the second row's buffers lie {layout.apart * width} words "
                             "after the first's, so that its first "
                             f"{layout.reused} of buffers {layout.shared} on are the first "
                             "row's last (the same input rows), built once"
                             if layout.reused else "")
                          + "; plain C one at a time, where the second row's pointers would "
                          "cost registers.")
        if any(run["count"] > 1 for run in runs):
            notes[-1] += (" Buffers alike but for their rows are built by one loop, its code "
                          "once.")
        elif g["oh"] >= 2:
            notes[-1] += (" One output row at a time: two rows' buffers would pass the "
                          f"{FILTER_STACK_BUDGET}-byte stack budget.")
        words = [(layout.slots[k] * width + kx * g["dw"], i)
                 for i, (k, kx) in enumerate(paired.words)]
        context.update(
            notes=wrap_notes(notes), buffers=buffers, runs=runs, width=width, words=words,
            nwords=nwords,
            loads=load_steps(words, g["sw"]),
            filter_words=filter_words, on_stack=on_stack, unroll_rows=unroll_rows,
            together=plan.together, apart=layout.apart * width, reused=layout.reused,
            one_row_words=(max(layout.slots) + 1) * width, two_row_words=layout.total * width,
            quads=four_filters(g["oc"], nwords),
            pad16=g["zero_point"] + g["offset"],
            plus_offset=c_add("", g["offset"]), unused_scratch=on_stack and node.room > 0,
            widen=sxtb16_call(g["offset"]))
        return Kernel("kernels/conv_pairs_s8.c.j2", context, weights)

    def geometry_context(self, node: Node, x: Tensor, w: Tensor,
                         grid: OutputGrid | None = None) -> dict:
        """Sizes, window and groups, as both kernels name them, and where output pixels go
        (pixel(p) and pixel_at(row, col): C for the output pixel; out_image: elements per
        image)."""
        win = self.geometry(node, x, w)
        group = attr(node, "group", 1)
        oc, icg = w.shape[:2]
        grid = grid or OutputGrid(win.out_hw[1], win.out_hw[0] * win.out_hw[1])
        return {"title": f"Conv '{node.name}'", "pixel": grid.pixel, "pixel_at": grid.at,
                "out_image": grid.image_pixels * oc, "n": x.shape[0],
                "ih": win.in_hw[0], "iw": win.in_hw[1], "ic": x.shape[1],
                "oh": win.out_hw[0], "ow": win.out_hw[1], "oc": oc,
                "kh": win.kernel[0], "kw": win.kernel[1],
                "sh": win.strides[0], "sw": win.strides[1],
                "dh": win.dilations[0], "dw": win.dilations[1],
                "pad_top": win.pads[0], "pad_left": win.pads[1],
                "group": group, "icg": icg, "ocg": oc // group,
                "out_col_step": grid.col_step}

    def macs(self, node: Node, graph: Graph) -> int:
        w = graph.tensor(node.inputs[1])
        y = graph.tensor(node.outputs[0])
        return y.size * int(np.prod(w.shape[1:]))


# Filters are copied to RAM only when each is read at least this many times (pairs of
# output pixels): the copy reads every filter once from flash and writes it twice to RAM.
READS_FOR_A_COPY = 4
# Fewest filters worth a block of their own: each block widens every receptive field again.
FEWEST_FILTERS_PER_BLOCK = 8
# Stack a kernel's filter blocks may take together with its receptive fields, where the plan
# has no room for them: the boards with a DSP core reserve 8 KiB of stack and the rest of the
# deepest call chain takes under 1 KiB (a build whose chain needs more reserves more: the
# stack is sized from the code, codegen/target/firmware.py).
FILTER_STACK_BUDGET = 6144


@dataclass(frozen=True)
class PairedPlan:
    """An int8 Conv that takes the paired-taps kernel: its pairs, row buffers' width and
    how many output rows' buffers it builds at a time (`together`, 1 or 2) and where they
    lie."""

    paired: PairedTaps
    width: int
    together: int
    layout: BufferLayout


def paired_plan(node: Node, graph: Graph, grid: OutputGrid | None = None
                ) -> PairedPlan | None:
    """The paired-taps kernel's plan for an int8 Conv with constant filters, 1-3 input
    channels and one group (conv_pairs.py), if its row buffers, the zero-point row and its
    filters widened fit FILTER_STACK_BUDGET and its filters MOST_WORDS words; else None. A
    ConvTranspose phase (`grid`) takes the general kernel."""
    x, w = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
    if (grid is not None or not w.is_const or x.rank not in (3, 4)
            or attr(node, "group", 1) != 1 or x.shape[1] > MOST_CHANNELS):
        return None
    win = window(node, tuple(x.shape[2:]), tuple(attr(node, "kernel_shape", w.shape[2:])))
    paired = pair_taps(_ohwi(w.data), win.dilations[1])
    words = len(paired.words)
    width = buffer_width(win.out_hw[1], win.strides[1], win.kernel[1], win.dilations[1])
    filter_bytes = 4 * (w.shape[0] * words + (w.shape[0] * words) % 2)
    rest = win.in_hw[1] * x.shape[1] + filter_bytes
    # Two output rows' buffers at a time where their stack fits too: the code that builds
    # the buffers and the pixel loop's evict each other from NUCLEO-L4R5ZI's 1 KiB
    # instruction cache; run twice in a row each, they miss half as often (estimated cycles,
    # first layers: VWW 790,450 -> 767,182, ResNet-8 608,744 -> 599,201, KWS 523,985 ->
    # 515,020). The DSP path only (ARIEL_DSP in the kernel): on a Cortex-M0+ the second row's
    # pointers cost registers, KWS's first layer 3.61 M -> 4.02 M cycles. The second row's
    # buffers that hold the first row's input rows are laid over them (two_row_layout) and
    # built once: VWW 767,182 -> 752,613 (one of ten buffers, with the buffers alike built
    # by one loop), ResNet-8 599,201 -> 593,476 (two of ten), KWS 515,020 -> 511,568.
    layout, together = one_row_layout(len(paired.buffers)), 1
    if win.out_hw[0] >= 2:
        two = two_row_layout(paired.buffers, win.strides[0], win.dilations[0])
        if 4 * two.total * width + rest <= FILTER_STACK_BUDGET:
            layout, together = two, 2
    stack = 4 * (max(layout.slots) + 1) * width + rest
    # The DSP loop's loads take byte offsets of at most 4095 (LDR's immediate).
    farthest = 4 * max(layout.slots[k] * width + kx * win.dilations[1]
                       for k, kx in paired.words)
    if (words > MOST_WORDS or stack > FILTER_STACK_BUDGET
            or farthest + 4 * win.strides[1] > 4095):
        return None
    return PairedPlan(paired, width, together, layout)


def four_pixels(node: Node, graph: Graph, k4: int, staged: bool, pixels: int,
                blocks: tuple[int, bool], grid: OutputGrid | None) -> bool:
    """Whether an int8 kernel whose filters are in RAM (`blocks`: filter_blocks' answer for
    two pixels' fields) takes its output pixels four at a time: where there are four pixels
    to take and the fields of four (8 k4 bytes, and the int8 field a staged kernel gathers)
    fit FILTER_STACK_BUDGET, the stack any such kernel may take, and leave the filter blocks
    as they are (filters on the stack share that budget with the fields: fewer filters per
    block would widen every field once more). The fields may pass SCRATCH_BUDGET, two
    pixels' budget: ResNet-8's 3x3 convolution of 64 channels widens 4,608 bytes of them,
    beside its filters in the arena."""
    fields = 8 * k4 + (k4 if staged else 0)
    # Row-major output (no ConvTranspose phase): the kernel stores four pixels' outputs at
    # fixed offsets from one pointer.
    return (grid is None and fields <= FILTER_STACK_BUDGET and pixels >= 4
            and filter_blocks(node, graph, fields, grid) == blocks)


def steps_beside(node: Node, oc: int, block: int, on_stack: bool, unit: int, k4: int,
                 fields: int) -> int:
    """Filters per block where each pair lies between its starts and output-stage entries
    (`unit` words a pair, filter_steps.py), if they take no more blocks than the `block`
    filters of k4 words each that the same RAM holds without them; else 0 (the kernel then
    reads the starts and entries from flash, by a second pointer)."""
    words = (FILTER_STACK_BUDGET - fields) // 4 if on_stack else node.room * k4
    most = 2 * (words // unit) if words >= unit else 0
    if most == 0:
        return 0
    if most >= oc:
        return oc
    if -(-oc // most) > -(-oc // block):
        return 0
    blocks = -(-oc // most)
    per_block = -(-oc // blocks)
    return per_block + per_block % 2


def pixel_steps(pixels: int, quads: bool) -> dict:
    """How an int8 kernel with its filters in RAM takes its output pixels: four at a time up
    to quad_end (if `quads`), then `threes` steps of three (ariel_dot_3x2_s16: one where
    three are left, three where five are, as in VWW's 3x3 maps of nine pixels, which
    otherwise left a pixel alone to read every filter for itself), pairs from pair_start to
    pair_end, and the last pixel alone if `lone`."""
    if not quads:
        return {"quad_end": 0, "threes": 0, "pair_start": 0,
                "pair_end": pixels - pixels % 2, "lone": pixels % 2}
    threes = {3: 1, 1: 3 if pixels >= 9 else 0}.get(pixels % 4, 0)
    quad_end = (pixels - 3 * threes) // 4 * 4
    pair_start = quad_end + 3 * threes
    left = pixels - pair_start
    return {"quad_end": quad_end, "threes": threes, "pair_start": pair_start,
            "pair_end": pair_start + left - left % 2, "lone": left % 2}


def starts_in_asm(groups: int) -> bool:
    """Whether the four-pixel step reads its starts in its assembly (ariel_dot_4x2_s16_from)
    for `groups` groups of four weights: where that unrolls no more groups than
    ariel_dot_4x2_s16 alone (its first group unrolled, then the rest: one, two or three
    groups, and passes of four; ariel_dot_4x2_s16 unrolls k4 % 4 groups and a pass). More
    code would pass the flash's 1 KiB instruction cache on NUCLEO-L4R5ZI (VWW's 1x1 layers of
    32 and 64 groups cost 1.4 times more), and the starts save about 8 cycles a step, which
    matter only where the step is short."""
    return groups % 4 != 0 or groups == 4


def filters_in_ram(node: Node, graph: Graph) -> tuple[int, int, int] | None:
    """What a Conv asks of the memory plan for its filters in RAM (see OpDef.room): bytes
    per unit of filters (int8: a pair widened to int16; float: four, as packed), the units
    it has, the fewest worth copying; None when it reads its filters where they lie. The
    packed kernels read all their filters once per pair (int8) or four (float) of output
    pixels; from flash, with wait states (5 at 120 MHz on NUCLEO-L4R5ZI, whose ART caches
    256 B of data), each of those reads is slow, and the int8 path would widen them at
    every read with an SXTB16 per word. Copied in blocks of filters that fit the room the
    plan has at the node's step (the int8 ones widened once per block), they cost neither;
    only the receptive fields are widened (int8) or found (float) again for every block.
    Taken for ungrouped convolutions whose filters are read several times; depthwise
    kernels and the plain large-field kernel read their filters where they lie, and so does
    the int8 plain C path (the room then goes unused: it was free)."""
    x, w = graph.tensor(node.inputs[0]), graph.tensor(node.inputs[1])
    if not w.is_const or x.rank not in (3, 4) or attr(node, "group", 1) != 1:
        return None
    paired = paired_plan(node, graph) if is_quantized(graph, node) else None
    if paired is not None:
        # All the filters or none: 2 filters of that many words per pair.
        pairs = -(-w.shape[0] // 2)
        return 8 * len(paired.paired.words), pairs, pairs
    oc, icg = w.shape[:2]
    taps = int(np.prod(w.shape[2:]))
    win = window(node, tuple(x.shape[2:]), tuple(attr(node, "kernel_shape", w.shape[2:])))
    per = _filters_per_unit(node, graph)
    if x.shape[0] * int(np.prod(win.out_hw)) // per < READS_FOR_A_COPY:
        return None
    units = -(-oc // per)
    if per == 4:
        return 16 * taps * icg, units, min(units, FEWEST_FILTERS_PER_BLOCK // per)
    k4 = -(-taps * icg // 4) * 4
    if 4 * k4 + (k4 if icg % 4 else 0) > SCRATCH_BUDGET:
        return None
    # Units enough for each pair's accumulator starts and output-stage entries beside it too
    # (filter_steps.py), where the plan has the room.
    extra = -(-units * (2 + MOST_STAGE_WORDS) // k4)
    return 4 * k4, units + extra, min(units, FEWEST_FILTERS_PER_BLOCK // per)


def _filters_per_unit(node: Node, graph: Graph) -> int:
    """Filters per unit of room: a pair for the int8 kernels, four for the float ones (the
    filters each step of their loops reads)."""
    return 2 if is_quantized(graph, node) else 4


def filter_blocks(node: Node, graph: Graph, field_bytes: int,
                  grid: OutputGrid | None) -> tuple[int, bool]:
    """How many filters the kernel copies to RAM at a time (0: none; filters_in_ram says
    when), and whether into the stack. Into the room the plan granted (node.room units);
    where it granted none, an int8 kernel copies them into what FILTER_STACK_BUDGET leaves
    beside the receptive fields, if that holds FEWEST_FILTERS_PER_BLOCK (or all the
    filters); so does a float one on a core with a single-precision FPU (elsewhere it
    reads them where they lie, block by block: a core without one has little stack and
    spends its time in software floating point). The blocks are made equal, so that none
    is a small remainder that finds every receptive field again for a few filters. A
    ConvTranspose phase (`grid`) reads its filters where they lie."""
    want = filters_in_ram(node, graph)
    if grid is not None or want is None:
        return 0, False
    per = _filters_per_unit(node, graph)
    oc = graph.tensor(node.inputs[1]).shape[0]
    on_stack = node.room == 0
    most = per * node.room if node.room else (FILTER_STACK_BUDGET - field_bytes) // want[0] * per
    if on_stack and most < min(oc, FEWEST_FILTERS_PER_BLOCK):
        return 0, False
    if most >= oc:
        return oc, on_stack
    blocks = -(-oc // most)
    block = -(-oc // blocks)
    return -(-block // per) * per, on_stack


def pack_depthwise(rows: np.ndarray) -> np.ndarray:
    """Depthwise filters [C, taps] (C a multiple of four) as int16 pairs in 32-bit words,
    per group of four channels: for taps (2p, 2p + 1), one word per channel j with tap 2p's
    weight in the bottom half and tap 2p + 1's in the top (what SMLAD multiplies the
    channel's two widened inputs by); an odd last tap as (channel 0, channel 2) and (1, 3),
    the halves SXTB16 widens a word of four channels into."""
    channels, taps = rows.shape
    pairs = taps // 2
    groups = rows.astype(np.int16).reshape(channels // 4, 4, taps)
    halves = [groups[:, :, 0:2 * pairs:2], groups[:, :, 1:2 * pairs:2]]
    paired = np.stack(halves, axis=-1).transpose(0, 2, 1, 3).reshape(channels // 4, -1, 2)
    if taps % 2:
        last = groups[:, [0, 2, 1, 3], taps - 1].reshape(channels // 4, 2, 2)
        paired = np.concatenate([paired, last], axis=1)
    return np.ascontiguousarray(paired).view(np.int32).reshape(-1)


# Stack for a depthwise kernel's padded copy of four channels of its whole input (every
# output row's taps then at fixed offsets from one pointer, no per-row ring bookkeeping);
# larger inputs take a ring of rows instead.
WHOLE_INPUT_BUDGET = 3072


def depthwise_context(win: Window, geometry: dict, offset: int) -> dict:
    """What conv_dw_s8.c.j2 needs besides the geometry: the weight words per group, its rows
    of words (a ring of input rows as long as one output pixel's taps span, each row as wide
    as the columns the taps read, padding included) and the widening (with the input offset
    added when the zero point is not folded)."""
    g = geometry
    taps = g["kh"] * g["kw"]
    rightmost = (win.out_hw[1] - 1) * g["sw"] - g["pad_left"] + (g["kw"] - 1) * g["dw"]
    bottom = (win.out_hw[0] - 1) * g["sh"] - g["pad_top"] + (g["kh"] - 1) * g["dh"]
    width, height = rightmost + g["pad_left"] + 1, bottom + g["pad_top"] + 1
    pair = f"{(offset & 0xFFFF) * 0x10001 - (1 << 32 if offset < 0 else 0)}"
    return {"taps": taps, "pairs": taps // 2, "odd": taps % 2,
            "words": 4 * (taps // 2) + 2 * (taps % 2),
            "slots": (g["kh"] - 1) * g["dh"] + 1,
            "width": width, "height": height,
            "whole": 4 * width * height <= WHOLE_INPUT_BUDGET,
            "copy_top": max(0, -g["pad_top"]), "copy_bottom": min(win.in_hw[0] - 1, bottom),
            "copy_from": max(0, -g["pad_left"]), "copy_to": min(win.in_hw[1] - 1, rightmost),
            "widen": (lambda v: f"ariel_sxtb16({v})") if offset == 0 else
                     (lambda v: f"ariel_sxtab16({pair}, {v})"),
            "widen_odd": (lambda v: f"ariel_sxtb16_ror8({v})") if offset == 0 else
                         (lambda v: f"ariel_sxtab16_ror8({pair}, {v})"),
            "plus_offset": f" + {offset}" if offset > 0 else (f" - {-offset}" if offset else "")}


def shares_columns(win: Window, group: int, pixels: int, strides: tuple[int, ...]) -> bool:
    """True when a float kernel takes `pixels` neighbouring output pixels of a row at a time
    with their inputs shared (ariel_row3_4x4_f32: four, at stride 1; ariel_dw3_3x4_f32 and
    ariel_dw3s2_3x4_f32: three, at stride 1 or 2): one group (or a depthwise convolution), a
    filter three wide read at one of `strides` and dilation 1 along the row (at stride 1 the
    taps of four pixels read six input columns, not twelve), and a row of at least `pixels`
    output pixels."""
    return (group == 1 and win.kernel[1] == 3 and win.strides[1] in strides
            and win.dilations[1] == 1 and win.out_hw[1] >= pixels)


# Stack a float depthwise kernel's filters may take, copied from flash a chunk of channels at
# a time on a core with a single-precision FPU (its steps read a chunk's filters for every
# three output pixels; from flash, each read waits).
DEPTHWISE_STACK_BUDGET = 4096


def depthwise_chunk(channels: int, taps: int) -> int:
    """Channels per chunk of a float depthwise kernel's filters copied to the stack: all of
    them if they fit DEPTHWISE_STACK_BUDGET, else equal chunks of a multiple of four."""
    most = DEPTHWISE_STACK_BUDGET // (4 * taps) // 4 * 4
    chunks = -(-channels // most)
    return -(-channels // chunks // 4) * 4 if chunks > 1 else channels


def assembly_clamp(bounds: tuple[float, float] | None) -> dict:
    """A fused clamp as the depthwise assembly takes it: which bounds apply (dw_clamp, bit 0
    low, bit 1 high) and both as C literals (dw_bounds; 0 where unused)."""
    low, high = bounds if bounds is not None else (-np.inf, np.inf)
    flags = int(not np.isneginf(low)) | int(not np.isposinf(high)) << 1
    return {"dw_clamp": flags,
            "dw_bounds": [c_literal(v, "float") if flags & bit else "0.0f"
                          for v, bit in ((low, 1), (high, 2))]}


def reads_padding(win: Window) -> bool:
    """True when some tap can fall outside the input (a pad above 0; a negative pad, as a
    ConvTranspose phase may have, only skips input)."""
    return any(p > 0 for p in win.pads)


def _ohwi(w: np.ndarray) -> np.ndarray:
    """Constant filters stored OHWI, so the innermost loop over input channels reads
    consecutive elements."""
    return np.ascontiguousarray(_as_2d(w).transpose(0, 2, 3, 1))


def _filter_strides(w: Tensor) -> tuple[int, int, int, int]:
    """Strides of a run-time filter tensor along output channel, height, width, input
    channel (a 1-D filter has height 1)."""
    strides = w.strides
    if w.rank == 3:
        return strides[0], 0, strides[2], strides[1]
    return strides[0], strides[2], strides[3], strides[1]


def _as_2d(array):
    """View a 1-D convolution's (N, C, W) arrays as (N, C, 1, W)."""
    return array if array.ndim == 4 else array.reshape(*array.shape[:2], 1, array.shape[2])
