"""The child process that runs generated C for codegen/run/hostrun.py (run as a script), so
that C which traps (an integer division by zero is SIGFPE on x86) or faults kills this
process, not ariel.

Protocol, one JSON object per line on stdin, answered by one line on stdout: {"model": id,
"library": path, "symbol": the run function, "arena": path of the file holding the arena,
"size": its bytes, "progress": offset of the progress cell in it} runs the model once on the
arena (loading it on first use) and answers "done". The arena file is mapped by both
processes, so inputs and outputs never cross the pipe, and the progress cell (written by
firmware/host_progress.c) says which kernel was running if this process dies. Only the
standard library is imported: the worker starts in a few tens of milliseconds."""

from __future__ import annotations

import _ctypes
import ctypes
import json
import mmap
import sys
from collections import OrderedDict

# Models kept loaded; older ones are unloaded (and loaded again if they run again).
KEEP_LOADED = 16


class LoadedModel:
    def __init__(self, request: dict):
        self.library = ctypes.CDLL(request["library"])
        self.run_function = getattr(self.library, request["symbol"])
        self.run_function.argtypes = [ctypes.c_void_p]
        self.run_function.restype = None
        with open(request["arena"], "r+b") as handle:
            self.memory = mmap.mmap(handle.fileno(), request["size"])
        self.view = ctypes.c_char.from_buffer(self.memory)
        self.address = ctypes.addressof(self.view)
        progress = ctypes.c_void_p.in_dll(self.library, "ariel_host_progress")
        progress.value = self.address + request["progress"]

    def run(self) -> None:
        self.run_function(self.address)

    def close(self) -> None:
        del self.view  # the mapping cannot close while a ctypes view of it exists
        self.memory.close()
        _ctypes.dlclose(self.library._handle)


def serve(requests, answers) -> None:
    loaded: OrderedDict[str, LoadedModel] = OrderedDict()
    for line in requests:
        request = json.loads(line)
        key = request["model"]
        model = loaded.pop(key, None) or LoadedModel(request)
        loaded[key] = model
        while len(loaded) > KEEP_LOADED:
            loaded.popitem(last=False)[1].close()
        model.run()
        answers.write("done\n")
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
