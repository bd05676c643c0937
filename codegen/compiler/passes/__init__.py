"""Graph rewrites, each a function on an ir.Graph, run in the order PIPELINE lists them."""

from codegen.compiler.passes.fold_batchnorm import fold_batchnorm
from codegen.compiler.passes.fold_constants import fold_constants
from codegen.compiler.passes.fold_pad import fold_pads
from codegen.compiler.passes.fold_relayout import fold_relayouts
from codegen.compiler.passes.fuse_activation import fuse_activation
from codegen.compiler.passes.fuse_gemm import fuse_gemm
from codegen.compiler.passes.layout import assign_layout
from codegen.compiler.passes.prune_outputs import prune_outputs
from codegen.compiler.passes.resolve import resolve
from codegen.compiler.passes.views import mark_views

# Before layout: rewrites in the model's own terms. After: memory order and storage.
SIMPLIFY = [fold_constants, prune_outputs, resolve, fold_batchnorm, fold_pads, fuse_gemm,
            fuse_activation]
LOWER = [assign_layout, fold_relayouts, mark_views]
PIPELINE = SIMPLIFY + LOWER


def run_pipeline(graph, passes=PIPELINE) -> None:
    for rewrite in passes:
        rewrite(graph)
