"""`ariel ops`: the operators ariel compiles, read from the registry (compiler/ops/), each with
how it runs in a float build and in an int8 build, and what of the ONNX operator it does not
take: attributes by name (ONNX's schema against the operator's OpDef.attributes) and the
limits its checks refuse (OpDef.limits)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import onnx

from codegen.compiler.ops import REGISTRY, OpDef
from codegen.compiler.ops.broadcast import BroadcastOp
from codegen.compiler.ops.compare import RelationOp
from codegen.compiler.ops.elementwise import UnaryOp
from codegen.compiler.quant.islands import BOUNDARY

# Peers' counts of ONNX operators, for the README and the table's last line.
ONNX2C = 113  # onnx2c's operator list
TFLITE_MICRO = 78  # TensorFlow Lite Micro's built-ins with an ONNX equivalent, about
# What is compiled without a kernel of its own (passes/, frontend.py).
ALSO = ("Also compiled: any standard operator whose inputs are all constants is computed at "
        "compile time (Shape, ConstantOfShape, Range, ...), Constant, If with a condition known "
        "at compile time (the branch it takes), and ai.onnx.ml.ZipMap at a model output "
        "(replaced by its probabilities tensor).")


@dataclass
class OperatorRow:
    op: str  # ai.onnx operators by name, others under their domain: ai.onnx.ml.Scaler
    domain: str  # "ai.onnx" or "ai.onnx.ml"
    float: str
    int8: str
    unsupported_attributes: list[str]
    limits: str

    def to_dict(self) -> dict:
        return asdict(self)


def operator_rows() -> list[OperatorRow]:
    """One row per registered operator, ariel's internal ones (ariel.*) left out."""
    rows = []
    for op, opdef in sorted(REGISTRY.items()):
        if op.startswith("ariel."):
            continue
        domain = opdef.domain or "ai.onnx"
        rows.append(OperatorRow(f"{opdef.domain}.{op}" if opdef.domain else op, domain,
                                float_status(opdef), int8_status(opdef),
                                unsupported_attributes(opdef), opdef.limits))
    return rows


def float_status(opdef: OpDef) -> str:
    """float32, or the element types the operator takes when float32 is not one of them."""
    if opdef.op_type in BOUNDARY:
        return "quantized models"  # a model holding them is compiled as int8
    types = opdef.dtypes
    if types is None or "float32" in types:
        return "float32"
    kinds = ["integers" if any(t.startswith(("int", "uint")) for t in types) else "",
             "bool" if "bool" in types else ""]
    return " and ".join(kind for kind in kinds if kind) + " only"


def int8_status(opdef: OpDef) -> str:
    """How a node of the operator runs in an int8 build."""
    if opdef.domain:
        return "refused on float data"
    if opdef.op_type in BOUNDARY:
        return "boundary"
    if opdef.dtypes is not None and "float32" not in opdef.dtypes:
        return "as in float"  # integers or bool: nothing to quantize
    if isinstance(opdef, UnaryOp) and opdef.int8:
        return "int8 (table)"
    if opdef.int8:
        return "int8"
    if opdef.int8_weights:
        return "float island (int8 weights)"
    if isinstance(opdef, BroadcastOp) and not isinstance(opdef, RelationOp):
        # a real function of one run-time value: part of a table (ops/table.py)
        return "table (scalar constant operand), else float island"
    return "float island"


def unsupported_attributes(opdef: OpDef) -> list[str]:
    """The attributes of the operator's newest ONNX schema that ariel does not take."""
    try:
        schema = onnx.defs.get_schema(opdef.op_type, domain=opdef.domain)
    except onnx.defs.SchemaError:
        return []
    return sorted(set(schema.attributes) - opdef.attributes)


def format_ops(rows: list[OperatorRow]) -> str:
    cells = [("operator", "float build", "int8 build", "does not take")]
    for row in rows:
        missing = "; ".join(filter(None, [", ".join(row.unsupported_attributes), row.limits]))
        cells.append((row.op, row.float, row.int8, missing or "-"))
    widths = [max(len(cell[i]) for cell in cells) for i in range(3)]
    lines = ["  ".join(cell[i].ljust(widths[i]) for i in range(3)) + "  " + cell[3]
             for cell in cells]
    rule = "-" * len(lines[0])
    standard = sum(row.domain == "ai.onnx" for row in rows)
    int8 = sum(row.int8.startswith("int8") for row in rows)
    summary = (f"{len(rows)} operators: {standard} of ai.onnx and {len(rows) - standard} of "
               f"ai.onnx.ml; {int8} with int8 kernels or tables. For comparison: onnx2c "
               f"{ONNX2C}, TensorFlow Lite Micro about {TFLITE_MICRO} ONNX equivalents.")
    return "\n".join([lines[0], rule, *lines[1:], rule, summary, ALSO])
