"""`sam build` of template.yaml with cargo-lambda (pinned, from the infra venv), timed.
A release build of the workspace: minutes on two cores, so it runs only with
INFRA_SAM_BUILD=1 (infra/tests/run.sh --build sets it).

arm64 needs the aarch64-unknown-linux-gnu standard library (cargo-lambda links with zig,
from the ziglang package). When that target is not installed, the build is x86_64 via
the Architecture parameter, and the test says so. A function whose package is not in the
workspace yet is left out of the build, and the test says so too."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import INFRA, ROOT, resources_of

pytestmark = pytest.mark.skipif(os.environ.get("INFRA_SAM_BUILD") != "1",
                                reason="sam build is a release build of the workspace: set INFRA_SAM_BUILD=1")

ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}


def arm64_target_installed() -> bool:
    try:
        out = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "aarch64-unknown-linux-gnu" in out.split()


def workspace_bins() -> set[str]:
    members = re.search(r"members\s*=\s*\[(.*?)\]", (ROOT / "Cargo.toml").read_text(), re.S).group(1)
    bins = set()
    for member in re.findall(r'"([^"]+)"', members):
        manifest = ROOT / member / "Cargo.toml"
        if manifest.exists():
            bins |= set(re.findall(r'\[\[bin\]\]\s*name\s*=\s*"([^"]+)"', manifest.read_text()))
    return bins


def test_sam_build(template):
    bin_dir = Path(sys.executable).parent
    arch = "arm64" if arm64_target_installed() else "x86_64"
    functions = {name: fn["Metadata"]["BuildProperties"]["Binary"]
                 for name, fn in resources_of(template, "AWS::Serverless::Function").items()}
    present = workspace_bins()
    buildable = sorted(name for name, binary in functions.items() if binary in present)
    left_out = sorted(set(functions) - set(buildable))
    assert "MonitorFunction" in buildable
    build_dir = ROOT / "target/infra-sam/build"
    shutil.rmtree(build_dir, ignore_errors=True)
    cmd = [str(bin_dir / "sam"), "build", "--template", "template.yaml", "--build-dir", str(build_dir),
           "--cache-dir", str(ROOT / "target/infra-sam/cache"),
           "--parameter-overrides", f"Architecture={arch}", *(buildable if left_out else [])]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=INFRA, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - started
    print(f"\nsam build: {arch}, functions {buildable}, {seconds:.0f} s"
          + (f"; left out (package not in the workspace): {left_out}" if left_out else "")
          + ("" if arch == "arm64" else "; x86_64 because the aarch64-unknown-linux-gnu target is not installed"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    for name in buildable:
        bootstrap = build_dir / name / "bootstrap"
        header = bootstrap.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", bootstrap
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch], f"{bootstrap} is not {arch}"
        print(f"  {name}: {bootstrap.stat().st_size / 1e6:.1f} MB")
