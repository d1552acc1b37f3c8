"""diffusion.options: command-line options derived from a config dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from diffusion.options import (
    add_config_options,
    add_runs_option,
    config_from_args,
    option_name,
    parameter_docs,
)


@dataclass(frozen=True)
class Toy:
    """A toy config.

    Some words before the section.

    Parameters
    ----------
    name : str
        The ``name`` of it, see :func:`numpy.mean` and
        :class:`~pathlib.Path`.
    count : int
        How many.
    lo, hi : float
        Bounds of the range.
    sizes : tuple of int
        Sizes.
    clip : float or None
        Clipping; None is off.
    flag : bool
        A switch.
    mode : {"a", "b"}
        The mode.
    every : int, "epoch" or None
        How often.
    bare

    Where it runs is not part of the config.

    Notes
    -----
    count : int
        Not a parameter: this is the Notes section.
    """

    KIND: ClassVar[str] = "toy"

    name: str
    count: int = 3
    lo: float = 0.0
    hi: float = 1.0
    sizes: tuple[int, ...] = (1, 2)
    clip: float | None = 5.0
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    every: int | str | None = "epoch"
    bare: str = "x"
    pair: tuple[float, float] = field(default=(0.1, 1.0))

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")


def _parser(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy")
    add_config_options(parser, Toy, **kwargs)
    return parser


def _config(argv, **kwargs) -> Toy:
    return config_from_args(Toy, _parser(**kwargs).parse_args(argv))


# ----------------------------------------------------------------------------- docstrings
def test_parameter_docs_reads_the_numpydoc_section():
    """Entries, shared entries, continuation lines, markup; the Notes section is not read.

    Mutants caught: a shared ``lo, hi`` entry read as one name, or only its first name; the
    second line of a description dropped; the Notes section's ``count`` overwriting the
    parameter's; reST roles kept.
    """
    docs = parameter_docs(Toy)
    assert list(docs) == [
        "name",
        "count",
        "lo",
        "hi",
        "sizes",
        "clip",
        "flag",
        "mode",
        "every",
        "bare",
    ]
    assert docs["name"] == "The name of it, see numpy.mean and pathlib.Path."
    assert docs["count"] == "How many."
    assert docs["lo"] == docs["hi"] == "Bounds of the range."
    assert docs["bare"] == ""  # a bare name, then a free paragraph that belongs to no entry
    assert parameter_docs(argparse.Namespace) == {}  # no Parameters section


def test_help_is_the_docstring_with_the_default():
    helps = {a.dest: a.help for a in _parser()._actions}
    assert helps["count"] == "How many. (default: 3)"
    assert helps["lo"].startswith("lo: Bounds of the range.")  # a shared entry names the field
    assert "(values separated by spaces or commas; default: 1,2)" in helps["sizes"]
    assert "none for None; default: 5" in helps["clip"]
    assert helps["name"].endswith("(required)")
    assert helps["bare"] == "bare (default: x)"  # no description: the field's words
    assert "KIND" not in helps and "kind" not in helps  # a ClassVar is no option
    over = {a.dest: a.help for a in _parser(help={"count": "n (default: three)"})._actions}
    assert over["count"] == "n (default: three)"


# ----------------------------------------------------------------------------- values
def test_round_trip_equals_the_config_built_directly():
    argv = ["--name", "n", "--count", "7", "--lo", "-0.5", "--sizes", "4,5", "6"]
    argv += ["--clip", "none", "--flag", "--mode", "b", "--pair", "0.2", "2"]
    expected = Toy(name="n", count=7, lo=-0.5, sizes=(4, 5, 6), clip=None, flag=True, mode="b")
    assert _config(argv) == Toy(**{**expected.__dict__, "pair": (0.2, 2.0)})


def test_unset_options_keep_the_defaults():
    """Mutant caught: argparse defaults (None, False) passed to the config as values."""
    assert _config(["--name", "n"]) == Toy(name="n")
    assert _config(["--name", "n", "--no-flag"]).flag is False
    assert _config(["--name", "n", "--count", "1e3"]).count == 1000  # ints may be 1e3
    assert _config(["--name", "n", "--sizes"]).sizes == ()  # the option alone: empty


def test_a_union_takes_the_first_member_type_that_reads_the_text():
    """``int | str | None``: ``5`` is the int 5, not the text '5'; ``none`` is None."""
    assert _config(["--name", "n", "--every", "5"]).every == 5
    assert _config(["--name", "n", "--every", "epoch"]).every == "epoch"
    assert _config(["--name", "n", "--every", "none"]).every is None


def test_zero_is_none_only_where_asked():
    assert _config(["--name", "n", "--clip", "0"]).clip == 0.0
    assert _config(["--name", "n", "--clip", "0"], zero_is_none=["clip"]).clip is None
    assert _config(["--name", "n", "--clip", "2"], zero_is_none=["clip"]).clip == 2.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--count", "many"], "--count must be an integer, got 'many'"),
        (["--count", "2.5"], "--count must be an integer"),
        (["--lo", "nan"], "--lo must be a finite number"),
        (["--sizes", "1,x"], "--sizes must be an integer, got 'x'"),
        (["--pair", "1", "2", "3"], "--pair takes 2 values, got 3"),
        (["--count", "-1"], "count must be >= 0"),  # the config's own check
    ],
)
def test_bad_values_raise_naming_the_option(argv, message):
    with pytest.raises(ValueError) as info:
        _config(["--name", "n", *argv])
    assert message in str(info.value)


def test_choices_names_aliases_and_converters(capsys):
    kwargs = dict(
        choices={"name": ["n", "m"], "sizes": [1, 2, 4]},
        names={"count": "--number"},
        aliases={"count": ["-c"]},
        converters={"bare": str.upper},
    )
    assert _config(["--name", "m", "-c", "2", "--bare", "q"], **kwargs) == Toy(
        name="m", count=2, bare="Q"
    )
    assert _config(["--name", "m", "--number", "4"], **kwargs).count == 4
    with pytest.raises(SystemExit) as info:  # a scalar choice: argparse refuses it
        _parser(**kwargs).parse_args(["--name", "z"])
    assert info.value.code == 2 and "invalid choice: 'z'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--sizes: invalid choice '3'"):
        _config(["--name", "n", "--sizes", "1,3"], **kwargs)
    with pytest.raises(ValueError, match="names no field"):
        _parser(choices={"nope": [1]})
    with pytest.raises(TypeError, match="dataclass"):
        add_config_options(argparse.ArgumentParser(), dict)


def test_required_field_and_namespace_without_record():
    with pytest.raises(SystemExit):
        _parser().parse_args([])
    # a namespace built by hand: texts are read by the annotations, values are taken as is
    args = argparse.Namespace(name="n", count="4", sizes=(3,), clip=None, flag=True)
    assert config_from_args(Toy, args) == Toy(name="n", count=4, sizes=(3,), flag=True)
    assert config_from_args(Toy, args, overrides={"count": 9}).count == 9


def test_runs_option_keeps_hidden_aliases():
    parser = argparse.ArgumentParser()
    add_runs_option(parser, hidden_aliases=("--out",))
    assert parser.parse_args([]).runs == "runs"
    assert parser.parse_args(["--out", "x"]).runs == "x"
    assert "--out" not in parser.format_help() and "--runs DIR" in parser.format_help()
    assert option_name("batch_sizes") == "--batch-sizes"


# ----------------------------------------------------------------------------- the real CLIs
def test_diffusion_walk_round_trip_and_bad_value(tmp_path, capsys):
    from diffusion.__main__ import build_parser, main
    from diffusion.experiments import WalkConfig

    argv = ["walk", "--potential", "fbm", "--hurst", "0.7", "--t-max", "1e6"]
    argv += ["--half-width", "300", "--seed", "2"]
    config = config_from_args(WalkConfig, build_parser().parse_args(argv))
    assert config == WalkConfig(potential="fbm", hurst=0.7, t_max=1e6, half_width=300, seed=2)
    assert main(["walk", "--walkers", "many", "--runs", str(tmp_path)]) == 2
    assert "--walkers must be an integer, got 'many'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_separable_run_round_trip_and_bad_value(tmp_path, capsys):
    from separable.__main__ import build_parser, main
    from separable.experiments import SeparableRunConfig

    argv = ["run", "--data", "random", "--data-seed", "3", "--seed", "4", "--n", "10"]
    argv += ["--bias", "--eta", "0.5", "--method", "sgd", "--replace"]
    config = config_from_args(SeparableRunConfig, build_parser().parse_args(argv))
    assert config == SeparableRunConfig(
        data="random", data_seed=3, seed=4, n=10, bias=True, eta=0.5, method="sgd", replace=True
    )
    old_spelling = build_parser().parse_args(["run", "--sgd-seed", "4"])
    assert config_from_args(SeparableRunConfig, old_spelling).seed == 4
    with pytest.raises(SystemExit) as info:
        main(["run", "--eta", "fast", "--runs", str(tmp_path)])
    assert info.value.code == 2
    assert "--eta must be a number, got 'fast'" in capsys.readouterr().err


def test_deep_train_round_trip_and_bad_value(tmp_path, capsys):
    from deep.__main__ import build_parser, main
    from deep.train import TrainConfig

    argv = ["train", "--model", "f1", "--data", "digits", "--milestones", "2", "4,6"]
    argv += ["--eval-every", "none", "--ghost-size", "none", "--regime-adaptation"]
    config = config_from_args(TrainConfig, build_parser().parse_args(argv))
    assert config == TrainConfig(
        model="f1",
        data="digits",
        milestones=(2.0, 4.0, 6.0),
        eval_every=None,
        regime_adaptation=True,
    )
    with pytest.raises(SystemExit) as info:
        main(["train", "--model", "f1", "--data", "digits", "--lr", "x", "--runs", str(tmp_path)])
    assert info.value.code == 2
    assert "--lr must be a number, got 'x'" in capsys.readouterr().err


def test_deep_sweeps_round_trip():
    from deep.__main__ import build_parser
    from deep.distance import DistanceConfig
    from deep.gamma import GammaConfig
    from deep.lawmap import LawMapConfig

    parser = build_parser()
    args = parser.parse_args(["distance", "--batch-sizes", "64,32", "--adapted-epochs", "0"])
    assert config_from_args(DistanceConfig, args) == DistanceConfig(
        batch_sizes=(32, 64), adapted_epochs=None
    )
    args = parser.parse_args(["gamma", "--directions", "5", "--radius-span", "0.1,0.5"])
    assert config_from_args(GammaConfig, args) == GammaConfig(
        n_directions=5, radius_span=(0.1, 0.5)
    )
    args = parser.parse_args(["lawmap", "--batch-norm", "off", "--lrs", "0.05", "--steps", "100"])
    assert config_from_args(LawMapConfig, args) == LawMapConfig(
        batch_norm=(False,), lrs=(0.05,), steps=100
    )
