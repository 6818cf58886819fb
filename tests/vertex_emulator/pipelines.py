"""Small KFP pipelines the emulator's tests compile and submit (no `from __future__ import
annotations`: KFP reads the annotations as types)."""

from pathlib import Path
from typing import Any

import yaml
from kfp import compiler, dsl


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def make_rows(n: int, rows: dsl.Output[dsl.Dataset]) -> str:
    with open(rows.path, "w") as f:
        f.write("x\n" * n)
    rows.metadata["rows"] = n
    return "made"


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def count_rows(rows: dsl.Input[dsl.Dataset], fail: bool) -> int:
    import os

    print("task sees VERTEX_API_ENDPOINT", os.environ.get("VERTEX_API_ENDPOINT"))
    if fail:
        raise ValueError(f"too few rows in {rows.uri}")
    with open(rows.path) as f:
        return len(f.read().splitlines())


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def task_env(names: list) -> dict:
    import os

    return {name: os.environ.get(name, "") for name in names}


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "rested"


@dsl.pipeline(name="two-steps")
def two_steps(n: int = 3, fail: bool = False) -> int:
    made = make_rows(n=n)
    made.set_caching_options(False)
    counted = count_rows(rows=made.outputs["rows"], fail=fail)
    counted.set_caching_options(False)
    return counted.output


@dsl.pipeline(name="environment")
def environment(names: list) -> dict:
    return task_env(names=names).set_caching_options(False).output


@dsl.pipeline(name="sleepy")
def sleepy(seconds: float = 60.0) -> str:
    return nap(seconds=seconds).set_caching_options(False).output


def compile_to(pipeline: Any, directory: Path) -> Path:
    path = directory / f"{pipeline.name}.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return path


def spec(pipeline: Any, directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(compile_to(pipeline, directory).read_text())
    return data
