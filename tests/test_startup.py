"""Start-up work moved off the critical path (nashrl.startup), checked in fresh interpreters."""

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_eager_deterministic_flag_sets_torchs_flag_without_importing_inductor():
    code = (
        "import sys, torch\n"
        "from nashrl.startup import eager_deterministic_flag\n"
        "with eager_deterministic_flag():\n"
        "    torch.use_deterministic_algorithms(True)\n"
        "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules,"
        " torch.use_deterministic_algorithms.__module__)"
    )
    assert _run(code) == "True False torch"  # flag on, no Inductor, torch's own function restored


def test_plain_torch_call_imports_inductor_which_is_why_the_context_exists():
    code = "import sys, torch\ntorch.use_deterministic_algorithms(True)\nprint('torch._inductor' in sys.modules)"
    assert _run(code) == "True"


def test_import_in_background_loads_the_module():
    code = (
        "import sys\n"
        "from nashrl.startup import import_in_background\n"
        "import_in_background('json.tool', 'no.such.module').join()\n"
        "print('json.tool' in sys.modules)"
    )
    assert _run(code) == "True"
