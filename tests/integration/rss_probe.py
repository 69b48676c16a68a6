"""Run a command and print its peak resident memory, measured fairly.

Linux carries a process's memory high-water mark across exec, so a command
forked straight from a large test process would inherit that process's peak.
This small launcher starts the command from its own small footprint, waits
with ``wait4`` and prints ``<exit status> <peak RSS bytes>`` on stdout.
The command's stderr passes through; its stdout is discarded.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> None:
    """Launch ``sys.argv[1:]`` and report on it."""
    process = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)


if __name__ == "__main__":
    main()
