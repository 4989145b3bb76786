"""The README's Python API example runs as written (shortened: fewer iterations)."""

import re
from pathlib import Path


def python_api_example() -> str:
    text = Path("README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_api_example_runs(ray_session, tmp_path, capsys):
    code = python_api_example()
    assert "ray.init()" in code and "range(100)" in code and '"training_iteration": 100' in code
    code = code.replace("ray.init()", "pass  # the test session's Ray instance")
    code = code.replace("range(100)", "range(2)").replace('"training_iteration": 100', '"training_iteration": 2')
    code = code.replace("/tmp/cournot_ckpt", str(tmp_path / "ckpt"))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"]["eval"]["max_grid_steps_to_nash"] >= 0
    assert namespace["solution"].n_unsolved == 0 and namespace["solution"].values.shape == (1024, 2)
    assert (tmp_path / "ckpt" / "nashrl.json").is_file()
    out = capsys.readouterr().out
    assert "grid_nash" in out  # the comparisons were printed
