"""Another package can `cimport numaprobe` and read the clock inside a nogil block, built
against numaprobe.get_include() and the .pxd files shipped in the wheel."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numaprobe
from numaprobe import clock


def test_get_include_has_header():
    assert Path(numaprobe.get_include(), "numaprobe", "numaprobe.h").is_file()
    pkg = Path(numaprobe.__file__).parent
    for pxd in ("__init__.pxd", "_core.pxd", "libnumaprobe.pxd"):
        assert (pkg / pxd).is_file(), pxd


def test_consumer_builds_and_times_nogil(tmp_path):
    src = Path(__file__).parent / "consumer"
    for f in ("consumer.pyx", "setup.py"):
        shutil.copy(src / f, tmp_path / f)
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        import consumer
        clk = clock.calibrate(20_000_000)
        t0 = time.perf_counter_ns()
        ns, ticks, acc, ordered = consumer.spin_ns(20_000_000)
        wall = time.perf_counter_ns() - t0
        assert acc == sum(range(20_000_000)) and ordered
        assert ns == clk.to_ns(ticks)
        assert 0 < ns <= wall
        assert ns > 0.5 * wall  # the loop is nearly all of the call
    finally:
        sys.path.remove(str(tmp_path))
