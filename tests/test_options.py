"""cnn.options.TrainOptions and the schedules' text form: parsed once, recorded in run.json, read back the same."""

import json

import pytest

from cnn import run as runs
from cnn.options import TrainOptions, parse_betas
from cnn.schedules import Constant, CosineDecay, ExponentialDecay, Schedule, StepDecay, make_schedule

FULL = TrainOptions(model_source="lenet5", input_text="1x28x28", data_name="/data/x.npz", limit=64, epochs=3,
                    batch_size=32, optimizer="adam", lr=0.002, weight_decay=1e-4, betas=(0.85, 0.995), eps=1e-7,
                    schedule=Schedule.parse("cosine:10:0.001"), validation_split=0.1, early_stopping=2, seed=5,
                    dtype="float64")


@pytest.mark.parametrize("options", [TrainOptions(), FULL, TrainOptions(schedule=Schedule.parse("step:3")),
                                     TrainOptions(optimizer="sgd", momentum=0.9, nesterov=True,
                                                  schedule=Schedule.parse("exp:1e37"))],
                         ids=["defaults", "full", "step-without-gamma", "sgd"])
def test_train_options_round_trip_through_json_text(options):
    document = json.loads(json.dumps(options.to_json()))
    assert TrainOptions.from_json(document) == options
    assert TrainOptions.from_json(options.to_json()) == options


def test_run_json_keeps_the_option_names_and_text_forms_of_cnn_run_1():
    document = FULL.to_json()
    assert list(document) == ["model_source", "input_text", "data_name", "limit", "epochs", "batch_size", "optimizer",
                              "lr", "momentum", "weight_decay", "nesterov", "rho", "alpha", "betas", "eps",
                              "schedule", "validation_split", "early_stopping", "seed", "dtype", "resize", "augment",
                              "validation_data", "init", "freeze", "freeze_until", "lr_pretrained", "classes",
                              "per_class", "init_exclude", "shards"]
    assert document["schedule"] == "cosine:10:0.001" and document["betas"] == "0.85,0.995"


def test_recorded_values_fill_the_options_left_at_their_defaults(tmp_path):
    runs.write_run_file(tmp_path, FULL, data="x", class_names=["a", "b"], parameters=1, test=None)
    recorded = runs.read_run_file(tmp_path)
    assert recorded == FULL
    given = TrainOptions(epochs=5, batch_size=128)
    merged = given.apply_recorded(recorded, {"epochs"})
    assert merged.epochs == 5 and merged.batch_size == 32 and merged.schedule == FULL.schedule
    assert given.apply_recorded(None, {"epochs"}) == given


@pytest.mark.parametrize("text, schedule, run_of_7", [
    ("none", Constant(), Constant()),
    ("step:5:0.5", StepDecay(5, 0.5), StepDecay(5, 0.5)),
    ("step:3", StepDecay(3, None), StepDecay(3, 0.1)),
    ("exp", ExponentialDecay(None), ExponentialDecay(0.9)),
    ("cosine", CosineDecay(None, None), CosineDecay(7, 0.0)),
    (" Cosine:4 ", CosineDecay(4, None), CosineDecay(4, 0.0)),
])
def test_schedule_parses_once_and_writes_its_text_back(text, schedule, run_of_7):
    parsed = Schedule.parse(text)
    assert parsed == schedule
    assert Schedule.parse(parsed.text) == parsed
    assert make_schedule(parsed, 7) == run_of_7  # what fit runs: cosine's t_max is the run's epoch count


def test_a_schedule_with_a_gap_has_no_text_form():
    with pytest.raises(ValueError, match="no text form"):
        CosineDecay(t_max=None, eta_min=0.1).text


@pytest.mark.parametrize("text", ["1.5,0.9", "nan,nan", "0.9,inf", "-0.1,0.9", "0.9,1.0"])
def test_betas_out_of_range_are_refused_when_parsed(text):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        parse_betas(text)


@pytest.mark.parametrize("text", ["exp:inf", "step:5:inf", "cosine:10:inf", "exp:nan"])
def test_schedules_refuse_infinite_rates(text):
    with pytest.raises(ValueError, match="finite|number"):
        Schedule.parse(text)
