"""Every optional dependency, when missing, is a MissingExtraError naming the extra to install.

Each case runs in a fresh interpreter whose import system refuses one package, as if it were
not installed (the real package stays on disk for the rest of the suite).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {hidden!r} or name.startswith({hidden!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hide())
from nestvec.errors import MissingExtraError
try:
{call}
except MissingExtraError as exc:
    print("MISSING:", exc)
else:
    print("NO ERROR")
"""

CASES = [
    ("sklearn", "eval", "from nestvec.eval import metrics; metrics.pair_classification([0.1, 0.9], [0, 1])"),
    ("scipy", "eval", "from nestvec.eval import metrics; metrics.correlations([0.1, 0.5, 0.9], [1, 2, 3])"),
    (
        "matplotlib",
        "eval",
        "from nestvec.eval.report import plot_tradeoffs; from nestvec.eval.tasks import TaskResult\n"
        "    plot_tradeoffs([TaskResult('sts', 'd', 'm', 'spearman', {'spearman': 1.0}, 1, 4, 1.0, 1.0)], 'p.png')",
    ),
    (
        "pyarrow",
        "parquet",
        "import pathlib; pathlib.Path('x.parquet').write_bytes(b'PAR1')\n"
        "    from nestvec.io.readers import RecordReader; list(RecordReader(pathlib.Path('x.parquet')))",
    ),
    ("fastapi", "serve", "from nestvec.serve import ServeConfig, create_app; create_app(ServeConfig())"),
    ("onnxruntime", "onnx", "import nestvec; nestvec.load_encoder('minilm', backend='onnx')"),
    ("torch", "transformer", "import nestvec; nestvec.load_encoder('minilm', backend='torch')"),
    ("torch", "transformer", "from nestvec.train import distill; distill('minilm', 'out', dims=16)"),
    (
        "datasets",
        "train",
        "from pathlib import Path; from nestvec.train.data import TrainingData\n"
        "    TrainingData('text', Path('x'), {'anchor': ['a'], 'positive': ['a']}).dataset()",
    ),
    (
        "sentence_transformers",
        "train",
        "from pathlib import Path; from nestvec.train.data import TrainingData\n"
        "    from nestvec.train.finetune import FinetuneConfig, finetune\n"
        "    data = TrainingData('text', Path('x'), {'anchor': ['a'], 'positive': ['a']})\n"
        "    finetune('minilm', 'out', data, config=FinetuneConfig(loss='simcse'))",
    ),
    (
        "peft",
        "decoder",
        "from pathlib import Path; from nestvec.train.data import TrainingData\n"
        "    from nestvec.train.finetune import FinetuneConfig, finetune\n"
        "    data = TrainingData('text', Path('x'), {'anchor': ['a'], 'positive': ['a']})\n"
        "    finetune('smollm2', 'out', data, config=FinetuneConfig(loss='simcse'))",
    ),
    (  # an empty cache, so the GGUF file must be read
        "gguf",
        "decoder",
        "import os, nestvec; os.environ['NESTVEC_CACHE_DIR'] = os.path.abspath('cache')\n"
        "    nestvec.load_encoder('smollm2')",
    ),
]


@pytest.mark.parametrize(("hidden", "extra", "call"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_missing_package_names_its_extra(hidden: str, extra: str, call: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = HIDE.format(hidden=hidden, call="    " + call)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert "MISSING:" in done.stdout, done.stdout + done.stderr[-2000:]
    assert f"pip install 'nestvec[{extra}]'" in done.stdout and f"'{hidden}'" in done.stdout


def test_the_cli_reports_a_missing_extra_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "topics.csv"
    data.write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(20)))
    hide = HIDE.split("from nestvec.errors")[0].format(hidden="sklearn")
    code = (
        hide
        + f"from nestvec.cli.main import main\nsys.argv = ['nestvec', 'eval', 'classification', {str(data)!r}]\nmain()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "pip install 'nestvec[eval]'" in done.stderr
