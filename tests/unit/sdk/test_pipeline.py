from __future__ import annotations

import pandas as pd
import pytest

from mixpeek_orchestration.sdk import (
    PipelineDefinition,
    ResourceType,
    RowCondition,
    StepDefinition,
    build_pipeline_steps,
)


class Proc:
    def __init__(self, config: object, progress_actor: object = None) -> None:
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return batch


def test_defaults_by_resource_type() -> None:
    steps = build_pipeline_steps(
        PipelineDefinition(
            "p",
            "1.0.0",
            [
                StepDefinition(Proc, ResourceType.CPU),
                StepDefinition(Proc, ResourceType.GPU),
                StepDefinition(Proc, ResourceType.API, max_concurrency=3),
                StepDefinition(Proc, enabled=False),
            ],
        )
    )
    assert [(s.resource_type, s.batch_size, s.concurrency, s.num_gpus) for s in steps] == [
        (ResourceType.CPU, 64, 1, 0.0),
        (ResourceType.GPU, 8, 1, 1.0),
        (ResourceType.API, 16, 3, 0.0),
    ]
    assert steps[0].pipeline == "p" and steps[0].name == "0_Proc"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (RowCondition.IS_TEXT, [True, False, False, False, False, False]),
        (RowCondition.IS_IMAGE, [False, True, False, False, False, False]),
        (RowCondition.IS_VIDEO, [False, False, True, False, False, False]),
        (RowCondition.IS_AUDIO, [False, False, False, True, False, False]),
        (RowCondition.IS_PDF, [False, False, False, False, True, False]),
        (RowCondition.ALWAYS, [True] * 6),
    ],
)
def test_row_conditions_route_by_mime_type(condition: RowCondition, expected: list[bool]) -> None:
    mimes = pd.Series(
        ["text/plain", "image/PNG", "video/mp4", "audio/wav", "application/pdf", None]
    )
    assert condition.mask(mimes).tolist() == expected
    assert [condition.matches(m) for m in mimes] == expected


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"max_concurrency": -2}, {"batch_size": 1.5}])
def test_step_options_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        StepDefinition(Proc, **bad)  # type: ignore[arg-type]


def test_unknown_resource_type_is_refused() -> None:
    with pytest.raises(ValueError):
        StepDefinition(Proc, resource_type="tpu")  # type: ignore[arg-type]
